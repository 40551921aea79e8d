-- Print devices: a job failed by the failure handler after an attempt had sent it to CUPS is
-- saved failed first and cancelled in CUPS after the save commits (never inside the
-- transaction, which would hold a pooled connection and the job's row while CUPS answers). The
-- CUPS job still to be cancelled is written with the failure and cleared once CUPS cancelled
-- it: a crash (or CUPS out of reach) in between leaves it here, for the step's retry.
ALTER TABLE print_jobs ADD COLUMN cups_cancel_wanted integer;
