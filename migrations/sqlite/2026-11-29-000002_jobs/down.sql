DROP TABLE job_rejected_rows;
DROP TABLE jobs;
