-- Treatment service types (feed contract).
select service_type_id, service_type_label, min_age, max_age
from (
    values
        ('adult', 'Adult', 18, 100),
        ('young_people', 'Young people', 10, 17)
) as service_types (service_type_id, service_type_label, min_age, max_age)
