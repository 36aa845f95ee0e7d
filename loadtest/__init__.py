"""Load testing: `tandem loadtest` (an open-loop harness with a simulated device fleet of real edge
workers), its scenarios, records and reports."""
