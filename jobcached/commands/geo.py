"""GEO commands: positions stored in sorted sets, searched by radius or box.

A geo set is an ordinary sorted set (TYPE says zset, ZRANGE works on it) whose scores are 52-bit
geohashes; `cache.geohash` holds the arithmetic. GEOADD is ZADD with computed scores: as in Redis,
it runs the ZADD code, so its effect (propagated as a ZADD), its `zadd` keyspace event and its
wake-up of BZPOPMIN waiters are ZADD's own.

All the search commands are one generic function, as Redis' georadiusGeneric, checking things in
the same order (type of the source, centre, options, option conflicts, then the missing-key
shortcut), so a bad command gets the same error from both servers. The STORE forms write a sorted
set (scores: geohashes, or distances with STOREDIST) over the destination whatever its type,
delete it when nothing matched, and propagate themselves unchanged: given the same source, a
follower computes the same result.

Number formats, as Redis: distances "%.4f" as bulk strings (RESP3 too); coordinates "%.17Lf"
with trailing zeros trimmed, RESP3 doubles; WITHHASH the score as an integer.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from jobcached.cache import geohash, zsets
from jobcached.cache.geohash import Shape
from jobcached.cache.zset import ZSet
from jobcached.commands.args import to_double, to_int
from jobcached.commands.longdouble import format_human
from jobcached.commands.registry import DENYOOM, READONLY, WRITE, command
from jobcached.commands.zsets import zadd_generic
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import NULL_ARRAY, Encoded
from jobcached.server.notify import GENERIC, ZSET, notify
from jobcached.server.session import Session

# georadiusGeneric's flags
_COORDS, _MEMBER, _NOSTORE, _SEARCH, _SEARCHSTORE = (1 << i for i in range(5))
_ASC, _DESC = 1, 2
_GEOADD_OPTIONS = (b"NX", b"XX", b"CH")


def _lonlat(lon_raw: bytes, lat_raw: bytes) -> tuple[float, float]:
    """A position argument pair (extractLongLatOrReply): strtod numbers within the ranges."""
    lon, lat = to_double(lon_raw), to_double(lat_raw)
    if not (geohash.LONG_MIN <= lon <= geohash.LONG_MAX
            and geohash.LAT_MIN <= lat <= geohash.LAT_MAX):
        raise CommandError(f"invalid longitude,latitude pair {lon:f},{lat:f}")
    return lon, lat


def _unit(raw: bytes) -> float:
    """Meters per unit (extractUnitOrReply)."""
    factor = geohash.UNITS.get(raw.lower())
    if factor is None:
        raise CommandError("unsupported unit provided. please use M, KM, FT, MI")
    return factor


def _number(raw: bytes, message: str) -> float:
    try:
        return to_double(raw)
    except CommandError:
        raise CommandError(message) from None


def human(s: Session, value: float) -> Any:
    """addReplyHumanLongDouble: "%.17Lf" trimmed; a bulk string in RESP2, a double in RESP3."""
    text = format_human(Fraction(value))
    return Encoded(b",%b\r\n" % text) if s.resp3 else text


# ------------------------------------------------------------------------------- writing


@command("GEOADD", arity=-5, flags=WRITE | DENYOOM, group="geo", keys=(1, 1, 1))
def geoadd(s: Session, argv: list[bytes]) -> Any:
    """GEOADD key [NX | XX] [CH] longitude latitude member [longitude latitude member ...]

    Add members at positions (or move them), stored as a sorted set scored by geohash. NX: only
    add new members; XX: only move existing ones; CH: count moved members too. Every position is
    checked before anything changes.

    Reply: integer: members added (with CH: added or moved).
    Errors: `syntax error` (also NX with XX); `value is not a valid float`; `invalid
    longitude,latitude pair <lon>,<lat>` (longitude -180..180, latitude
    -85.05112878..85.05112878); `WRONGTYPE`.
    """
    i = 2
    nx = xx = False
    while i < len(argv) and (opt := argv[i].upper()) in _GEOADD_OPTIONS:
        nx = nx or opt == b"NX"
        xx = xx or opt == b"XX"
        i += 1
    if (len(argv) - i) % 3 or (nx and xx):
        raise SyntaxErr()
    zadd_argv = [b"zadd", *argv[1:i]]
    for j in range(i, len(argv), 3):
        lon, lat = _lonlat(argv[j], argv[j + 1])
        zadd_argv += [b"%d" % geohash.score_of(lon, lat), argv[j + 2]]
    return zadd_generic(s, zadd_argv, incr=False)


# ------------------------------------------------------------------------------- reading


@command("GEOPOS", arity=-2, flags=READONLY, group="geo", keys=(1, 1, 1))
def geopos(s: Session, argv: list[bytes]) -> list[Any]:
    """GEOPOS key [member ...]

    The positions of the members.

    Reply: array of [longitude, latitude] (doubles; RESP2 bulk strings), a null array for a
    member (or key) that does not exist.
    Errors: `WRONGTYPE`.
    """
    zset = s.keyspace.get_zset(argv[1])
    out: list[Any] = []
    for member in argv[2:]:
        score = None if zset is None else zset.score(member)
        if score is None:
            out.append(NULL_ARRAY)
        else:
            lon, lat = geohash.decode_score(score)
            out.append([human(s, lon), human(s, lat)])
    return out


@command("GEOHASH", arity=-2, flags=READONLY, group="geo", keys=(1, 1, 1))
def geohash_(s: Session, argv: list[bytes]) -> list[bytes | None]:
    """GEOHASH key [member ...]

    The members' positions as standard 11-character geohash strings.

    Reply: array of bulk strings, nil for a member (or key) that does not exist.
    Errors: `WRONGTYPE`.
    """
    zset = s.keyspace.get_zset(argv[1])
    out: list[bytes | None] = []
    for member in argv[2:]:
        score = None if zset is None else zset.score(member)
        out.append(None if score is None else geohash.geohash_string(score))
    return out


@command("GEODIST", arity=-4, flags=READONLY, group="geo", keys=(1, 1, 1))
def geodist(s: Session, argv: list[bytes]) -> bytes | None:
    """GEODIST key member1 member2 [M | KM | FT | MI]

    The distance between two members (meters by default).

    Reply: bulk string printed with 4 decimals, or nil when a member or the key does not exist.
    Errors: `syntax error`; `unsupported unit provided. please use M, KM, FT, MI`; `WRONGTYPE`.
    """
    if len(argv) > 5:
        raise SyntaxErr()
    to_meter = _unit(argv[4]) if len(argv) == 5 else 1.0
    zset = s.keyspace.get_zset(argv[1])
    if zset is None:
        return None
    score1, score2 = zset.score(argv[2]), zset.score(argv[3])
    if score1 is None or score2 is None:
        return None
    lon1, lat1 = geohash.decode_score(score1)
    lon2, lat2 = geohash.decode_score(score2)
    return b"%.4f" % (geohash.distance(lon1, lat1, lon2, lat2) / to_meter)


# ------------------------------------------------------------------------------- searching


def _member_centre(zset: ZSet, member: bytes) -> tuple[float, float]:
    score = zset.score(member)
    if score is None:
        raise CommandError("could not decode requested zset member")
    return geohash.decode_score(score)


def _radius(raw: bytes, unit: bytes) -> tuple[float, float]:
    """(radius, meters per unit) (extractDistanceOrReply)."""
    radius = _number(raw, "need numeric radius")
    if radius < 0:
        raise CommandError("radius cannot be negative")
    return radius, _unit(unit)


def _box(w_raw: bytes, h_raw: bytes, unit: bytes) -> tuple[float, float, float]:
    """(width, height, meters per unit) (extractBoxOrReply)."""
    width = _number(w_raw, "need numeric width")
    height = _number(h_raw, "need numeric height")
    if height < 0 or width < 0:
        raise CommandError("height or width cannot be negative")
    return width, height, _unit(unit)


def _search(s: Session, argv: list[bytes], src: int, flags: int) -> Any:
    """georadiusGeneric: every GEORADIUS* and GEOSEARCH* command."""
    zset = s.keyspace.get_zset(argv[src])
    store: bytes | None = None
    storedist = False
    lon = lat = conversion = 0.0
    radius: float | None = None
    width = height = 0.0
    if flags & _COORDS:
        base = 6
        lon, lat = _lonlat(argv[2], argv[3])
        radius, conversion = _radius(argv[4], argv[5])
    elif flags & _MEMBER:
        base = 5
        if zset is not None:
            lon, lat = _member_centre(zset, argv[2])
            radius, conversion = _radius(argv[3], argv[4])
    else:
        base = 3 if flags & _SEARCHSTORE else 2
        if flags & _SEARCHSTORE:
            store = argv[1]
    withdist = withhash = withcoord = any_ = False
    frommember = fromloc = byradius = bybox = False
    sort = 0
    count = 0
    search = bool(flags & _SEARCH)
    may_store = not flags & _NOSTORE and not search
    i, n = base, len(argv)
    while i < n:
        arg = argv[i].lower()
        left = n - i - 1
        if arg == b"withdist":
            withdist = True
        elif arg == b"withhash":
            withhash = True
        elif arg == b"withcoord":
            withcoord = True
        elif arg == b"any":
            any_ = True
        elif arg == b"asc":
            sort = _ASC
        elif arg == b"desc":
            sort = _DESC
        elif arg == b"count" and left >= 1:
            count = to_int(argv[i + 1])
            if count <= 0:
                raise CommandError("COUNT must be > 0")
            i += 1
        elif arg in (b"store", b"storedist") and left >= 1 and may_store:
            store = argv[i + 1]
            storedist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and search and flags & _SEARCHSTORE:
            storedist = True
        elif arg == b"frommember" and left >= 1 and search and not fromloc:
            if zset is not None:
                lon, lat = _member_centre(zset, argv[i + 1])
            frommember = True
            i += 1
        elif arg == b"fromlonlat" and left >= 2 and search and not frommember:
            lon, lat = _lonlat(argv[i + 1], argv[i + 2])
            fromloc = True
            i += 2
        elif arg == b"byradius" and left >= 2 and search and not bybox:
            radius, conversion = _radius(argv[i + 1], argv[i + 2])
            byradius = True
            i += 2
        elif arg == b"bybox" and left >= 3 and search and not byradius:
            width, height, conversion = _box(argv[i + 1], argv[i + 2], argv[i + 3])
            radius = None
            bybox = True
            i += 3
        else:
            raise SyntaxErr()
        i += 1
    if store is not None and (withdist or withhash or withcoord):
        what = "GEOSEARCHSTORE" if flags & _SEARCHSTORE else "STORE option in GEORADIUS"
        raise CommandError(f"{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD "
                           "options")
    name = argv[0].decode("utf-8", "surrogateescape")
    if search and not (frommember or fromloc):
        raise CommandError(f"exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if search and not (byradius or bybox):
        raise CommandError(f"exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if any_ and not count:
        raise CommandError("the ANY argument requires COUNT argument")
    if zset is None:
        if store is not None:
            _store(s, argv, store, None, flags)
            return 0
        return []
    if count and not sort and not any_:
        sort = _ASC
    shape = Shape(lon, lat, conversion, radius, width, height)
    found = geohash.search(zset.scan_score_range, shape, count if any_ else 0)
    if sort:
        found.sort(key=lambda p: p[0], reverse=sort == _DESC)
    if count:
        del found[count:]
    if store is not None:
        result = ZSet()
        for dist, member, score, _, _ in found:
            result.add(member, dist / conversion if storedist else score)
        _store(s, argv, store, result, flags)
        return len(found)
    if not (withdist or withhash or withcoord):
        return [p[1] for p in found]
    out = []
    for dist, member, score, plon, plat in found:
        item: list[Any] = [member]
        if withdist:
            item.append(b"%.4f" % (dist / conversion))
        if withhash:
            item.append(int(score))
        if withcoord:
            item.append([human(s, plon), human(s, plat)])
        out.append(item)
    return out


def _store(s: Session, argv: list[bytes], dst: bytes, result: ZSet | None, flags: int) -> None:
    """Write a search's result over `dst` (any type, TTL cleared), or delete it when empty."""
    if zsets.store(s.keyspace, dst, result or ZSet()):
        if result:
            notify(s.server, ZSET, b"geosearchstore" if flags & _SEARCH else b"georadiusstore",
                   dst)
        else:
            notify(s.server, GENERIC, b"del", dst)


@command("GEOSEARCH", arity=-7, flags=READONLY, group="geo", keys=(1, 1, 1))
def geosearch(s: Session, argv: list[bytes]) -> Any:
    """GEOSEARCH key FROMMEMBER member | FROMLONLAT longitude latitude
    BYRADIUS radius M | KM | FT | MI | BYBOX width height M | KM | FT | MI
    [ASC | DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]

    The members inside a circle or an axis-aligned box around a member or a position. Without
    ASC / DESC the order is the search's own (COUNT without ANY implies ASC); COUNT n ANY stops
    at the first n matches found instead of returning the n nearest.

    Reply: array of members, or of [member, distance?, hash?, [longitude, latitude]?] when WITH*
    options are given (distance "%.4f" in the query's unit, hash an integer).
    Errors: `syntax error`; `exactly one of FROMMEMBER or FROMLONLAT can be specified for
    <command>`; `exactly one of BYRADIUS and BYBOX can be specified for <command>`; `COUNT must
    be > 0`; `the ANY argument requires COUNT argument`; `could not decode requested zset
    member`; `need numeric radius` / `width` / `height`; `radius cannot be negative`; `height or
    width cannot be negative`; `unsupported unit provided. please use M, KM, FT, MI`; `invalid
    longitude,latitude pair ...`; `WRONGTYPE`.
    """
    return _search(s, argv, 1, _SEARCH)


@command("GEOSEARCHSTORE", arity=-8, flags=WRITE | DENYOOM, group="geo", keys=(1, 2, 1))
def geosearchstore(s: Session, argv: list[bytes]) -> Any:
    """GEOSEARCHSTORE destination source FROMMEMBER member | FROMLONLAT longitude latitude
    BYRADIUS radius M | KM | FT | MI | BYBOX width height M | KM | FT | MI
    [ASC | DESC] [COUNT count [ANY]] [STOREDIST]

    GEOSEARCH, stored at destination as a sorted set (scores: geohashes, or distances in the
    query's unit with STOREDIST); destination is overwritten whatever its type, and deleted when
    nothing matched.

    Reply: integer: the number of members stored.
    Errors: as GEOSEARCH; `GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and
    WITHCOORD options`.
    """
    return _search(s, argv, 2, _SEARCH | _SEARCHSTORE)


@command("GEORADIUS", arity=-6, flags=WRITE | DENYOOM, group="geo", keys=(1, 1, 1))
def georadius(s: Session, argv: list[bytes]) -> Any:
    """GEORADIUS key longitude latitude radius M | KM | FT | MI [WITHCOORD] [WITHDIST]
    [WITHHASH] [COUNT count [ANY]] [ASC | DESC] [STORE key] [STOREDIST key]

    The members within a radius of a position (GEOSEARCH FROMLONLAT ... BYRADIUS); STORE /
    STOREDIST store the result as GEOSEARCHSTORE does.

    Reply: as GEOSEARCH; with STORE / STOREDIST, the number of members stored.
    Errors: as GEOSEARCH; `STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH
    and WITHCOORD options`.
    """
    return _search(s, argv, 1, _COORDS)


@command("GEORADIUS_RO", arity=-6, flags=READONLY, group="geo", keys=(1, 1, 1))
def georadius_ro(s: Session, argv: list[bytes]) -> Any:
    """GEORADIUS_RO key longitude latitude radius M | KM | FT | MI [WITHCOORD] [WITHDIST]
    [WITHHASH] [COUNT count [ANY]] [ASC | DESC]

    GEORADIUS without STORE / STOREDIST.

    Reply: as GEOSEARCH.
    Errors: as GEOSEARCH.
    """
    return _search(s, argv, 1, _COORDS | _NOSTORE)


@command("GEORADIUSBYMEMBER", arity=-5, flags=WRITE | DENYOOM, group="geo", keys=(1, 1, 1))
def georadiusbymember(s: Session, argv: list[bytes]) -> Any:
    """GEORADIUSBYMEMBER key member radius M | KM | FT | MI [WITHCOORD] [WITHDIST] [WITHHASH]
    [COUNT count [ANY]] [ASC | DESC] [STORE key] [STOREDIST key]

    GEORADIUS around a member's position.

    Reply: as GEORADIUS.
    Errors: as GEORADIUS.
    """
    return _search(s, argv, 1, _MEMBER)


@command("GEORADIUSBYMEMBER_RO", arity=-5, flags=READONLY, group="geo", keys=(1, 1, 1))
def georadiusbymember_ro(s: Session, argv: list[bytes]) -> Any:
    """GEORADIUSBYMEMBER_RO key member radius M | KM | FT | MI [WITHCOORD] [WITHDIST]
    [WITHHASH] [COUNT count [ANY]] [ASC | DESC]

    GEORADIUSBYMEMBER without STORE / STOREDIST.

    Reply: as GEOSEARCH.
    Errors: as GEOSEARCH.
    """
    return _search(s, argv, 1, _MEMBER | _NOSTORE)
