-- Referral sources of the feed contract; criminal-justice routes start with cj_ (C4).
select
    referral_source_id,
    referral_source_label,
    referral_source_id like 'cj\_%' as is_criminal_justice
from (
    values
        ('self', 'Self, family or friends'),
        ('gp', 'GP'),
        ('hospital', 'Hospital'),
        ('mental_health', 'Mental health service'),
        ('social_care', 'Social care'),
        ('children_and_family_services', 'Children and family services'),
        ('education', 'Education'),
        ('housing', 'Housing'),
        ('cj_prison', 'Prison'),
        ('cj_probation', 'Probation'),
        ('cj_police_custody', 'Police custody'),
        ('cj_liaison_diversion', 'Liaison and diversion'),
        ('cj_court', 'Court'),
        ('other', 'Other')
) as referral_sources (referral_source_id, referral_source_label)
