"""world.game_world's ScanNetwork edges (reference netsecgame.md §6.4, §1.2): a scan from
a controlled host the world has no firewall row for, and a scan of a network that is not
a valid IPv4 block (Network is not validated, §1.2), both find nothing and change
nothing rather than failing."""

from __future__ import annotations

from protocol import Network

from .world_samples import ATTACKER, DEFENDER, LAN1, NOWHERE, make_world, owning, scan


def test_scanning_from_a_host_outside_the_world_finds_nothing() -> None:
    """§6.4 / §5.1 rule 4: a source with no firewall row reaches no host, so the scan of a
    populated network leaves the state as it was (the same object)."""
    world = make_world()
    state = owning(NOWHERE)
    for role in (ATTACKER, DEFENDER):
        assert world.step(state, scan(NOWHERE, LAN1), "a", role) is state


def test_scanning_a_network_that_is_no_ipv4_block_finds_nothing() -> None:
    """§1.2: a Network's ip and mask are not validated, so a scan may name a mask over 32
    or a non-address; such a network contains no host: the state is unchanged, twice (the
    second scan takes the remembered empty result)."""
    world = make_world()
    state = owning(*world.start_candidates)
    source = world.start_candidates[0]
    for bad in (Network("192.168.1.0", 33), Network("lan-one", 24)):
        assert world.step(state, scan(source, bad), "a", ATTACKER) is state
        assert world.step(state, scan(source, bad), "a", ATTACKER) is state
