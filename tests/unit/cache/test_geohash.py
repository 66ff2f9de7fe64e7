"""The geohash engine without a server: values redis-server 7.0 gives for the same inputs."""

from __future__ import annotations

from fractions import Fraction

import pytest

from jobcached.cache import geohash
from jobcached.cache.geohash import Shape
from jobcached.commands.longdouble import format_human

PALERMO = (13.361389, 38.115556)
CATANIA = (15.087269, 37.502669)


def test_scores_and_positions_match_redis() -> None:
    # GEOADD Sicily 13.361389 38.115556 Palermo; ZSCORE / GEOPOS / GEOHASH Sicily Palermo
    score = geohash.score_of(*PALERMO)
    assert score == 3479099956230698
    lon, lat = geohash.decode_score(float(score))
    assert format_human(Fraction(lon)) == b"13.36138933897018433"
    assert format_human(Fraction(lat)) == b"38.11555639549629859"
    assert geohash.geohash_string(float(score)) == b"sqc8b49rny0"


def test_distance_matches_redis() -> None:
    # GEODIST Sicily Palermo Catania -> "166274.1516"
    a = geohash.decode_score(float(geohash.score_of(*PALERMO)))
    b = geohash.decode_score(float(geohash.score_of(*CATANIA)))
    assert b"%.4f" % geohash.distance(*a, *b) == b"166274.1516"
    assert geohash.distance(*a, *a) == 0.0


@pytest.mark.parametrize(("score", "expected"), [
    (-5.0, (b"180", b"85.0511287799999991")),  # two's complement: all bits set, clamped
    (float("inf"), (b"-179.99999731779098511", b"-85.05112751263942528")),  # cast to 0
])
def test_scores_outside_the_geohash_range(score: float, expected: tuple[bytes, bytes]) -> None:
    """GEOPOS of members ZADDed with these scores, as redis-server 7.0 prints them."""
    lon, lat = geohash.decode_score(score)
    assert (format_human(Fraction(lon)), format_human(Fraction(lat))) == expected


def test_step_estimate() -> None:
    assert geohash.estimate_step(0, 0) == 26
    assert geohash.estimate_step(1000, 0) > geohash.estimate_step(100_000, 0)
    assert geohash.estimate_step(1000, 70) == geohash.estimate_step(1000, 0) - 1
    assert geohash.estimate_step(1000, -85) == geohash.estimate_step(1000, 0) - 2
    assert geohash.estimate_step(1e12, 0) == 1


def test_search_areas_drop_useless_neighbours_and_repeats() -> None:
    small = geohash.search_areas(Shape(10.0, 47.0, 1.0, radius=100.0))
    assert len(small) == 9 and small[0] != geohash.ZERO
    assert geohash.ZERO in small  # a 100 m circle cannot reach every neighbour
    huge = geohash.cells_to_scan(geohash.search_areas(Shape(0.0, 0.0, 1000.0, radius=8000.0)))
    assert len(huge) == len(set(huge[1:])) + 1  # no cell scanned twice in a row


def test_search_finds_only_members_inside() -> None:
    members = {b"Palermo": float(geohash.score_of(*PALERMO)),
               b"Catania": float(geohash.score_of(*CATANIA))}
    ordered = sorted((score, m) for m, score in members.items())

    def scan(lo: float, hi: float) -> list[tuple[float, bytes]]:
        return [(s, m) for s, m in ordered if lo <= s < hi]

    near_catania = geohash.search(scan, Shape(15.0, 37.0, 1000.0, radius=100.0), 0)
    assert [p[1] for p in near_catania] == [b"Catania"]
    both = geohash.search(scan, Shape(15.0, 37.0, 1000.0, width=400.0, height=400.0), 0)
    assert sorted(p[1] for p in both) == [b"Catania", b"Palermo"]
    assert len(geohash.search(scan, Shape(15.0, 37.0, 1000.0, radius=400.0), 1)) == 1
