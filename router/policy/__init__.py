"""The routing policy and everything it reasons with: plain data, pure functions, an injected clock.

No gRPC, no Ray, no servers: the router and the device agent import it alike. Also holds the fleet
simulator and what-if replay, which run this same code over simulated fleets.
"""
