-- Client sex codes (feed contract).
select sex_id, sex_label
from (
    values
        ('m', 'Male'),
        ('f', 'Female'),
        ('x', 'Other'),
        ('u', 'Not stated')
) as sexes (sex_id, sex_label)
