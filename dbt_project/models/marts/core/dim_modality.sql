-- First structured treatment modality (feed contract).
select modality_id, modality_label
from (
    values
        ('pharmacological', 'Pharmacological'),
        ('psychosocial', 'Psychosocial'),
        ('recovery_support', 'Recovery support'),
        ('inpatient_detox', 'Inpatient detoxification'),
        ('residential_rehab', 'Residential rehabilitation')
) as modalities (modality_id, modality_label)
