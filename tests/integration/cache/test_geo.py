"""GEO commands against redis-server 7.0: scores, positions, distances and searches must agree
to the last printed digit, in RESP2 and RESP3."""

from __future__ import annotations

import random

import pytest

from tests.conftest import RedisServerProcess, ServerProcess
from tests.integration.cache.differential import Pair
from tests.integration.cache.test_zsets import check_bytes, check_command_info

GEO_COMMANDS = ["GEOADD", "GEOPOS", "GEODIST", "GEOHASH", "GEOSEARCH", "GEOSEARCHSTORE",
                "GEORADIUS", "GEORADIUS_RO", "GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO"]

SICILY = ["13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania",
          "12.758489", "38.788135", "edge1", "17.241510", "38.788135", "edge2"]


def test_command_info(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_command_info(server, redis_server, GEO_COMMANDS)


WRONG_ARITY = [("GEOADD", "k", "1", "2"), ("GEOPOS",), ("GEODIST", "k", "a"), ("GEOHASH",),
               ("GEOSEARCH", "k", "FROMMEMBER", "a", "BYRADIUS", "1"),
               ("GEOSEARCHSTORE", "d", "k", "FROMMEMBER", "a", "BYRADIUS", "1"),
               ("GEORADIUS", "k", "1", "2", "3"), ("GEORADIUS_RO", "k", "1", "2", "3"),
               ("GEORADIUSBYMEMBER", "k", "a", "1"), ("GEORADIUSBYMEMBER_RO", "k", "a", "1")]


@pytest.mark.parametrize("argv", WRONG_ARITY, ids=lambda a: a[0])
def test_wrong_number_of_arguments(pair: Pair, argv: tuple[str, ...]) -> None:
    pair.check(*argv)


def test_geoadd_options_and_errors(pair: Pair) -> None:
    pair.check("GEOADD", "g", *SICILY)
    pair.check("GEOADD", "g", "NX", "1", "2", "Palermo", "3", "4", "new")
    pair.check("GEOADD", "g", "XX", "CH", "1", "2", "Palermo", "3", "4", "other")
    pair.check("GEOADD", "g", "ch", "xx", "1", "2", "Palermo")
    pair.check("GEOADD", "g", "CH", "5", "6", "Palermo", "7", "8", "fresh")
    pair.check("ZRANGE", "g", "0", "-1", "WITHSCORES")
    for bad in [("NX", "XX", "1", "2", "a"), ("1", "2"), ("1", "2", "a", "3"),
                ("CH", "CH", "CH"), ("181", "0", "a"), ("0", "85.06", "a"),
                ("-180.0001", "-85.06", "a"), ("abc", "1", "a"), ("1", "nan", "a"),
                ("1", "2", "ok", "200", "2", "bad"), ("inf", "0", "a"), ("1e400", "0", "a")]:
        pair.check("GEOADD", "bad", *bad)
        pair.check("EXISTS", "bad")
    pair.check("SET", "str", "v")
    pair.check("GEOADD", "str", "1", "2", "a")
    for cmd in (("GEOPOS", "str", "a"), ("GEOHASH", "str", "a"), ("GEODIST", "str", "a", "b"),
                ("GEOSEARCH", "str", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "m"),
                ("GEORADIUS", "str", "0", "0", "1", "m"),
                ("GEORADIUSBYMEMBER", "str", "a", "1", "m")):
        pair.check(*cmd)


def test_extreme_positions(pair: Pair) -> None:
    points = ["180", "85.05112878", "ne", "-180", "-85.05112878", "sw", "0", "0", "zero",
              "-0", "-0", "negzero", "179.9999999", "0.0000001", "am", "-179.9999999", "0", "am2",
              "90", "85.05112877", "north", "0x1p-3", "1e-5", "hex"]
    pair.check("GEOADD", "g", *points)
    members = [points[i] for i in range(2, len(points), 3)]
    pair.check("ZRANGE", "g", "0", "-1", "WITHSCORES")
    pair.check("GEOPOS", "g", *members, "missing")
    pair.check("GEOHASH", "g", *members, "missing")
    pair.check("GEODIST", "g", "ne", "sw")
    pair.check("GEODIST", "g", "am", "am2", "km")
    pair.check("GEOSEARCH", "g", "FROMLONLAT", "180", "0", "BYRADIUS", "100", "km", "ASC",
               "WITHCOORD", "WITHDIST", "WITHHASH")
    pair.check("GEOSEARCH", "g", "FROMMEMBER", "north", "BYRADIUS", "500", "km", "WITHDIST")
    pair.check("GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "40000", "40000", "km", "ASC")
    # Scores written by ZADD need not be geohashes: GEOPOS decodes them all the same.
    pair.check("ZADD", "g", "-5", "neg", "1e300", "huge", "4503599627370496", "big", "0.5",
               "half", "inf", "pinf", "-inf", "ninf", "-1e300", "nhuge")
    pair.check("GEOPOS", "g", "neg", "huge", "big", "half", "pinf", "ninf", "nhuge")
    pair.check("GEOHASH", "g", "neg", "big", "half")


def test_geopos_geohash_geodist(pair: Pair) -> None:
    pair.check("GEOADD", "g", *SICILY)
    pair.check("GEOPOS", "g", "Palermo", "nope", "Catania")
    pair.check("GEOPOS", "missing", "a", "b")
    pair.check("GEOPOS", "g")
    pair.check("GEOHASH", "g", "Palermo", "Catania", "nope")
    pair.check("GEOHASH", "missing", "a")
    pair.check("GEOHASH", "g")
    for unit in ["m", "km", "KM", "ft", "mi", "Mi"]:
        pair.check("GEODIST", "g", "Palermo", "Catania", unit)
    pair.check("GEODIST", "g", "Palermo", "Catania")
    pair.check("GEODIST", "g", "Palermo", "Palermo")
    pair.check("GEODIST", "g", "Palermo", "nope")
    pair.check("GEODIST", "missing", "a", "b")
    pair.check("GEODIST", "missing", "a", "b", "yd")
    pair.check("GEODIST", "g", "Palermo", "Catania", "yd")
    pair.check("GEODIST", "g", "Palermo", "Catania", "km", "extra")


def test_search_options(pair: Pair) -> None:
    pair.check("GEOADD", "g", *SICILY)
    centre = [("FROMLONLAT", "15", "37"), ("FROMMEMBER", "Palermo"), ("fromlonlat", "14", "38")]
    areas = [("BYRADIUS", "200", "km"), ("BYRADIUS", "100", "km"), ("BYBOX", "400", "400", "km"),
             ("bybox", "200", "100", "mi"), ("BYRADIUS", "0", "m"), ("BYRADIUS", "300000", "ft")]
    extras = [(), ("ASC",), ("DESC",), ("WITHDIST",), ("WITHCOORD", "WITHHASH"),
              ("COUNT", "2"), ("COUNT", "1", "DESC", "WITHDIST"), ("COUNT", "3", "ANY"),
              ("COUNT", "1", "ANY", "ASC"), ("WITHDIST", "WITHCOORD", "WITHHASH", "ASC")]
    for c in centre:
        for a in areas:
            for e in extras:
                pair.check("GEOSEARCH", "g", *c, *a, *e)
    pair.check("GEOSEARCH", "missing", "FROMMEMBER", "x", "BYRADIUS", "1", "m")
    pair.check("GEOSEARCH", "missing", "FROMLONLAT", "1", "1", "BYBOX", "1", "1", "m")


def test_georadius_family(pair: Pair) -> None:
    pair.check("GEOADD", "g", *SICILY)
    for opts in [(), ("WITHDIST",), ("WITHCOORD", "WITHDIST", "WITHHASH", "DESC"),
                 ("COUNT", "2"), ("COUNT", "2", "ANY"), ("ASC", "count", "1")]:
        pair.check("GEORADIUS", "g", "15", "37", "200", "km", *opts)
        pair.check("GEORADIUS_RO", "g", "15", "37", "200", "km", *opts)
        pair.check("GEORADIUSBYMEMBER", "g", "Palermo", "200", "km", *opts)
        pair.check("GEORADIUSBYMEMBER_RO", "g", "Palermo", "200", "km", *opts)
    pair.check("GEORADIUSBYMEMBER", "g", "nope", "200", "km")
    pair.check("GEORADIUSBYMEMBER", "missing", "nope", "x", "y")
    pair.check("GEORADIUS", "missing", "1", "2", "3", "km")
    pair.check("GEORADIUS_RO", "g", "15", "37", "200", "km", "STORE", "d")
    pair.check("GEORADIUSBYMEMBER_RO", "g", "Palermo", "200", "km", "STOREDIST", "d")


SEARCH_ERRORS = [
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "FROMLONLAT", "1", "2"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "2", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "m"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYBOX", "1", "1", "m", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "g", "BYRADIUS", "1", "km", "ASC", "WITHDIST"),
    ("geosearch", "g", "FROMMEMBER", "Palermo", "ASC", "WITHDIST"),
    ("GEOSEARCH", "g", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "-1", "km"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "abc", "km"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "yd"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYBOX", "x", "1", "m"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYBOX", "1", "x", "m"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYBOX", "1", "-1", "m"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYBOX", "-1", "1", "yd"),
    ("GEOSEARCH", "g", "FROMLONLAT", "200", "1", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "COUNT", "0"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "COUNT", "-3"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "COUNT", "x"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "COUNT"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "ANY"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "STORE", "d"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "STOREDIST"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "bogus"),
    ("GEOSEARCH", "missing", "FROMMEMBER", "x", "BYRADIUS", "1", "km", "ANY"),
    ("GEOSEARCH", "missing", "FROMMEMBER", "x", "ASC", "WITHDIST"),
    ("GEOSEARCHSTORE", "d", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "WITHDIST"),
    ("GEOSEARCHSTORE", "d", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "STORE", "x"),
    ("GEOSEARCHSTORE", "d", "g", "BYRADIUS", "1", "km", "STOREDIST", "ASC"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "d", "WITHCOORD"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STORE"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "FROMMEMBER", "Palermo"),
    ("GEORADIUS", "g", "15", "91", "200", "km"),
    ("GEORADIUS", "g", "15", "37", "-1", "km"),
    ("GEORADIUS", "g", "15", "37", "1", "parsec"),
    ("GEORADIUSBYMEMBER", "g", "Palermo", "200", "km", "STOREDIST", "d", "WITHHASH"),
]


def test_search_errors(pair: Pair) -> None:
    pair.check("GEOADD", "g", *SICILY)
    for argv in SEARCH_ERRORS:
        pair.check(*argv)
    pair.check("EXISTS", "d")


def test_store_forms(pair: Pair) -> None:
    pair.check("GEOADD", "g", *SICILY)
    pair.check("SET", "d", "string")
    pair.check("EXPIRE", "d", "100")
    pair.check("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km")
    pair.check("TYPE", "d")
    pair.check("TTL", "d")
    pair.check("ZRANGE", "d", "0", "-1", "WITHSCORES")
    pair.check("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km",
               "STOREDIST", "DESC", "COUNT", "2")
    pair.check("ZRANGE", "d", "0", "-1", "WITHSCORES")
    pair.check("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "d2")
    pair.check("ZRANGE", "d2", "0", "-1", "WITHSCORES")
    pair.check("GEORADIUS", "g", "15", "37", "200", "mi", "STOREDIST", "d2", "COUNT", "1")
    pair.check("ZRANGE", "d2", "0", "-1", "WITHSCORES")
    pair.check("GEORADIUSBYMEMBER", "g", "Palermo", "1000", "ft", "STORE", "d3")
    pair.check("ZRANGE", "d3", "0", "-1", "WITHSCORES")
    pair.check("RPUSH", "lst", "x")
    pair.check("GEORADIUSBYMEMBER", "g", "Palermo", "100", "km", "STOREDIST", "lst",
               "STORE", "lst")
    pair.check("ZRANGE", "lst", "0", "-1", "WITHSCORES")
    # Nothing found, or no source: the destination is deleted.
    pair.check("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "-100", "0", "BYRADIUS", "1", "km")
    pair.check("EXISTS", "d")
    pair.check("GEOSEARCHSTORE", "d2", "missing", "FROMMEMBER", "x", "BYRADIUS", "1", "km")
    pair.check("EXISTS", "d2")
    pair.check("GEORADIUSBYMEMBER", "missing", "x", "1", "km", "STORE", "d3")
    pair.check("EXISTS", "d3")
    pair.check("GEORADIUS", "g", "1", "1", "1", "km", "STORE", "nothing")
    # The source as its own destination.
    pair.check("GEOSEARCHSTORE", "g", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "10", "km")
    pair.check("ZRANGE", "g", "0", "-1", "WITHSCORES")


def test_search_many_points(pair: Pair) -> None:
    """A few hundred points around the world: every search shape and place agrees, including
    near the poles, across the antimeridian, and with COUNT ... ANY."""
    rng = random.Random(7)
    args: list[str] = []

    def place(name: str, lon: tuple[float, float], lat: tuple[float, float]) -> None:
        args.extend([f"{rng.uniform(*lon):.6f}", f"{rng.uniform(*lat):.6f}", name])

    for i in range(400):
        place(f"p{i}", (-180, 180), (-85, 85))
    for i in range(100):
        place(f"am{i}", (175, 180), (-5, 5))
        place(f"bm{i}", (-180, -175), (-5, 5))
        place(f"n{i}", (-180, 180), (80, 85.05))
    pair.check("GEOADD", "w", *args)
    for lon, lat in [("0", "0"), ("179.9", "0"), ("-179.9", "1"), ("10", "84"), ("-50", "-84.9"),
                     ("100", "45")]:
        for area in [("BYRADIUS", "500", "km"), ("BYRADIUS", "3000", "km"),
                     ("BYBOX", "1000", "600", "km"), ("BYRADIUS", "8000", "km"),
                     ("BYBOX", "30000", "30000", "km")]:
            pair.check("GEOSEARCH", "w", "FROMLONLAT", lon, lat, *area, "WITHDIST", "ASC")
            pair.check("GEOSEARCH", "w", "FROMLONLAT", lon, lat, *area, "WITHHASH")
            pair.check("GEOSEARCH", "w", "FROMLONLAT", lon, lat, *area, "COUNT", "5", "ANY")
            pair.check("GEOSEARCH", "w", "FROMLONLAT", lon, lat, *area, "COUNT", "5", "DESC")


def test_exact_reply_bytes(server: ServerProcess, redis_server: RedisServerProcess) -> None:
    check_bytes(server, redis_server, [
        ("GEOADD", "g", *SICILY),
        ("GEOPOS", "g", "Palermo", "x"),
        ("GEODIST", "g", "Palermo", "Catania", "km"),
        ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "300", "km", "WITHCOORD",
         "WITHDIST", "WITHHASH", "ASC"),
        ("GEOHASH", "g", "Palermo", "x"),
    ])
