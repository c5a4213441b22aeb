"""The broker: routing between agents and world workers, seats, heartbeats, trace proxy,
and the NetSecGame TCP gateway. (Built in the distributed-server issue.)"""
