-- Schedules: the run that claimed a fire, so a claim step re-run after its answer was lost
-- finds its own claim and goes on, instead of taking the fire for someone else's.
ALTER TABLE schedule_fires ADD COLUMN claimed_by text;
