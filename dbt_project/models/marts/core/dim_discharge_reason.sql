-- Discharge reasons (feed contract) with the outcome flags the KPIs use:
-- success (T4), transfer (closes the episode, not the journey), and the
-- unplanned exits of T5 (neither success nor transfer, decision 9).
select
    discharge_reason_id,
    discharge_reason_label,
    is_success,
    is_transfer,
    not is_success and not is_transfer as is_unplanned_exit
from (
    values
        ('completed_drug_free', 'Treatment completed - drug free', true, false),
        ('completed_alcohol_free', 'Treatment completed - alcohol free', true, false),
        ('completed_occasional_user', 'Treatment completed - occasional user', true, false),
        ('transferred_not_in_custody', 'Transferred - not in custody', false, true),
        ('transferred_in_custody', 'Transferred - in custody', false, true),
        ('dropped_out', 'Dropped out', false, false),
        ('withdrawn_by_provider', 'Treatment withdrawn by provider', false, false),
        ('retained_in_custody', 'Retained in custody', false, false),
        ('declined_treatment', 'Declined treatment', false, false),
        ('died', 'Died', false, false)
) as discharge_reasons (discharge_reason_id, discharge_reason_label, is_success, is_transfer)
