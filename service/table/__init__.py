"""The prompt table: every family's ``P*`` and every task's ``u, v`` resident on the serving device.

prompt_table  the table: add, replace and remove tasks and families; compose rows for a batch
task_slots    where tasks live: rows of slot classes, addressed by name
slot_class    one slot class: every resident task of one prompt length and rank
family_table  every served family's ``P*``
row_plan      which rows of a chunk the table writes, decided before anything changes
name_index    sorted names for paginated listings
interned      strings many rows share, kept once
created_at    ``created_at`` as 8 bytes per task
"""
