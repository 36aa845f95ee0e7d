"""Load testing: the device-fleet simulator (fleet_sim) and its shipped scenarios."""
