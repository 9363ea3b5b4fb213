-- Service lines of the ledger and register (feed contract). Treatment lines are
-- all but prevention and other (F3's spend).
select
    service_line_id,
    service_line_label,
    service_line_id not in ('prevention', 'other') as is_treatment
from (
    values
        ('adult_community', 'Adult community treatment'),
        ('young_people', 'Young people''s service'),
        ('inpatient_detox', 'Inpatient detoxification'),
        ('residential_rehab', 'Residential rehabilitation'),
        ('gp_shared_care', 'GP shared care'),
        ('pharmacy_needle_exchange', 'Pharmacy needle exchange'),
        ('supervised_consumption', 'Supervised consumption'),
        ('recovery_support', 'Recovery support'),
        ('criminal_justice', 'Criminal justice'),
        ('prevention', 'Prevention'),
        ('other', 'Other')
) as service_lines (service_line_id, service_line_label)
