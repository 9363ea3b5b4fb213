-- Substance groups of the feed contract and the KPI group each reports under
-- (kpis.md: opiate; non-opiate = non-opiate only + non-opiate and alcohol; alcohol).
select substance_id, substance_label, kpi_group, kpi_group_label, sort_order
from (
    values
        ('opiate', 'Opiate', 'opiate', 'Opiate', 1),
        ('non_opiate_only', 'Non-opiate only', 'non_opiate', 'Non-opiate', 2),
        ('non_opiate_and_alcohol', 'Non-opiate and alcohol', 'non_opiate', 'Non-opiate', 3),
        ('alcohol_only', 'Alcohol only', 'alcohol', 'Alcohol', 4)
) as substances (substance_id, substance_label, kpi_group, kpi_group_label, sort_order)
