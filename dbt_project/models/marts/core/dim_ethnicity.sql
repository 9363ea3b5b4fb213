-- NHS ethnic category codes as the feed carries them (lower case).
select ethnicity_id, ethnicity_label, ethnic_group
from (
    values
        ('a', 'British', 'White'),
        ('b', 'Irish', 'White'),
        ('c', 'Any other White background', 'White'),
        ('d', 'White and Black Caribbean', 'Mixed'),
        ('e', 'White and Black African', 'Mixed'),
        ('f', 'White and Asian', 'Mixed'),
        ('g', 'Any other mixed background', 'Mixed'),
        ('h', 'Indian', 'Asian or Asian British'),
        ('j', 'Pakistani', 'Asian or Asian British'),
        ('k', 'Bangladeshi', 'Asian or Asian British'),
        ('l', 'Any other Asian background', 'Asian or Asian British'),
        ('m', 'Caribbean', 'Black or Black British'),
        ('n', 'African', 'Black or Black British'),
        ('p', 'Any other Black background', 'Black or Black British'),
        ('r', 'Chinese', 'Other ethnic groups'),
        ('s', 'Any other ethnic group', 'Other ethnic groups'),
        ('z', 'Not stated', 'Not stated')
) as ethnicities (ethnicity_id, ethnicity_label, ethnic_group)
