-- Age at referral bands (the feed allows 10-100); 10-17 is the young people's band.
select age_band_id, min_age, max_age, sort_order
from (
    values
        ('10-17', 10, 17, 1),
        ('18-24', 18, 24, 2),
        ('25-34', 25, 34, 3),
        ('35-44', 35, 44, 4),
        ('45-54', 45, 54, 5),
        ('55-64', 55, 64, 6),
        ('65+', 65, 200, 7)
) as age_bands (age_band_id, min_age, max_age, sort_order)
