-- Funding streams of the ledger and grant files (feed contract), with the
-- grants' succession: SSMTRG (2022-23 to 2024-25) was replaced by DATRIG.
select
    funding_stream_id,
    funding_stream_label,
    is_grant,
    replaces_funding_stream_id
from (
    values
        ('public_health_grant', 'Public health grant', true, null),
        ('ssmtrg', 'Supplementary Substance Misuse Treatment and Recovery Grant', true, null),
        ('datrig', 'Drug and Alcohol Treatment and Recovery Improvement Grant', true, 'ssmtrg'),
        ('rsdatg', 'Rough Sleeping Drug and Alcohol Treatment Grant', true, null),
        ('inpatient_detox_grant', 'Inpatient detoxification grant', true, null),
        ('pcc', 'Police and Crime Commissioner', false, null),
        ('home_office', 'Home Office', false, null),
        ('nhs_icb', 'NHS integrated care board', false, null),
        ('council_general', 'Council general fund', false, null),
        ('other', 'Other', false, null)
) as funding_streams (funding_stream_id, funding_stream_label, is_grant, replaces_funding_stream_id)
