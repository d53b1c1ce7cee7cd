"""What a run writes: the run folder (atomic), the CSV exports and summary, the workbook (streamed
where it pays) and the feedback copies."""
