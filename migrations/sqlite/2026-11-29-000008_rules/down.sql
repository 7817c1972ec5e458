DROP TABLE rule_runs;
DROP TABLE tag_rules;
