-- Scripts: the attempt carrying out a run holds a lease on it, renewed while its worker runs. The
-- run's fence (a session lock) goes with its connection, which a proxy or a network blip may
-- drop while the carrier still runs the script; another attempt that then takes the fence finds
-- the lease fresh and does not run the script again. A carrier that died stops renewing it: the
-- lease goes stale and a later attempt carries out the run.
ALTER TABLE script_runs ADD COLUMN lease_until timestamptz;
