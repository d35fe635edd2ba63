"""Reports in the formats CI systems read: SARIF for code scanning, GitHub workflow annotations,
and JUnit XML for test results. Each module turns values the stages already make (diagnostics,
a test report) into one format's text; none of them runs a stage."""
