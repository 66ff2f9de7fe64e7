"""Geohash arithmetic for the GEO commands, bit for bit as Redis 7.0 (geohash.c, geohash_helper.c).

A geo set is a sorted set whose scores are 52-bit geohashes: longitude and latitude are each cut
into 2**26 steps (latitude over Web Mercator's -85.05112878..85.05112878, not -90..90) and their
bits interleaved, latitude in the even bits. A search never scans the whole set: it picks a
geohash precision (`step`) at which the search area fits in the cell of its centre plus the eight
neighbours, turns each of those nine cells into a score range, and checks the exact distance
only for the members found there. `search_areas()` is geohashCalculateAreasByShapeWGS84,
quirks included (the east/west/north/south neighbours that cannot intersect the area are
dropped; a neighbour equal to the one just scanned is skipped, except right after the centre).

Why bit for bit: the scores are visible (ZSCORE, GEOSEARCH WITHHASH), positions are printed
with 17 decimals, and whether a member on the edge of a radius is found depends on the last bit
of the distance. Python's float arithmetic and `math` functions are the same IEEE doubles and
the same C library calls as Redis', done in the same order, so the results are identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

STEP_MAX = 26  # GEO_STEP_MAX: 26 bits per coordinate, 52 in a score
LONG_MIN, LONG_MAX = -180.0, 180.0
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
#: Earth's quadratic mean radius for WGS-84, as Redis uses it for every distance
EARTH_RADIUS_IN_METERS = 6372797.560856
MERCATOR_MAX = 20037726.37
_D_R = math.pi / 180.0
#: relative (and absolute, in meters) slack of the latitude pre-filter of searches
_REACH_MARGIN = 1e-9
#: Units of distance, as meters per unit (Redis' extractUnitOrReply, matched without case).
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
_GEOALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"
_M64 = (1 << 64) - 1

Hash = tuple[int, int]
"""A geohash cell: (bits, step); (0, 0) is Redis' "zeroed" neighbour, never searched."""
ZERO: Hash = (0, 0)


def _interleave(xlo: int, ylo: int) -> int:
    """Redis' interleave64: bits of x (latitude) in the even positions, y in the odd ones."""
    b = (0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF,
         0x0000FFFF0000FFFF)
    x, y = xlo & 0xFFFFFFFF, ylo & 0xFFFFFFFF
    for shift, mask in zip((16, 8, 4, 2, 1), reversed(b), strict=True):
        x = (x | (x << shift)) & mask
        y = (y | (y << shift)) & mask
    return x | (y << 1)


def encode(lon: float, lat: float, step: int = STEP_MAX, lat_min: float = LAT_MIN,
           lat_max: float = LAT_MAX) -> int:
    """geohashEncode over longitude -180..180 and the given latitude range: the cell bits."""
    lat_offset = (lat - lat_min) / (lat_max - lat_min)
    long_offset = (lon - LONG_MIN) / (LONG_MAX - LONG_MIN)
    lat_offset *= float(1 << step)
    long_offset *= float(1 << step)
    return _interleave(int(lat_offset), int(long_offset))


def score_of(lon: float, lat: float) -> int:
    """The sorted-set score GEOADD stores (geohashAlign52Bits of a step-26 hash)."""
    return encode(lon, lat)


@dataclass(slots=True)
class Area:
    """The rectangle a geohash cell covers (GeoHashArea)."""

    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float


def _even_bits_table() -> list[int]:
    """For every 16-bit value, its 8 even-position bits packed (a fast deinterleave)."""
    byte = [sum(((b >> (2 * i)) & 1) << i for i in range(4)) for b in range(256)]
    return [byte[i & 0xFF] | byte[i >> 8] << 4 for i in range(1 << 16)]


_EVEN16 = _even_bits_table()
_CELLS26 = float(1 << STEP_MAX)
_LAT_SCALE = LAT_MAX - LAT_MIN
_LONG_SCALE = LONG_MAX - LONG_MIN


def _deinterleave(bits: int) -> tuple[int, int]:
    """Redis' deinterleave64 (bits below 2**64): (latitude part, longitude part)."""
    e = _EVEN16
    odd = bits >> 1
    return ((e[bits & 0xFFFF] | e[(bits >> 16) & 0xFFFF] << 8 | e[(bits >> 32) & 0xFFFF] << 16
             | e[bits >> 48] << 24),
            (e[odd & 0xFFFF] | e[(odd >> 16) & 0xFFFF] << 8 | e[(odd >> 32) & 0xFFFF] << 16
             | e[odd >> 48] << 24))


def decode_area(bits: int, step: int) -> Area:
    """geohashDecode with the WGS84 ranges."""
    ilato, ilono = _deinterleave(bits)
    div = float(1 << step)
    return Area(LONG_MIN + (ilono * 1.0 / div) * _LONG_SCALE,
                LONG_MIN + ((ilono + 1) * 1.0 / div) * _LONG_SCALE,
                LAT_MIN + (ilato * 1.0 / div) * _LAT_SCALE,
                LAT_MIN + ((ilato + 1) * 1.0 / div) * _LAT_SCALE)


def _to_uint64(score: float) -> int:
    """`(uint64_t)score` as gcc compiles it for x86-64: truncation, two's complement below 0;
    from 2**64 up (inf too) the conversion gives 0, below -2**63 it gives 2**63."""
    if -2.0**63 <= score < 2.0**64:
        return int(score) & _M64
    return 0 if score > 0 else 1 << 63


def decode_score(score: float) -> tuple[float, float]:
    """(longitude, latitude) of a stored score: the centre of its step-26 cell, clamped to the
    ranges (decodeGeohash + geohashDecodeAreaToLongLat)."""
    ilato, ilono = _deinterleave(_to_uint64(score))
    lon = (LONG_MIN + (ilono * 1.0 / _CELLS26) * _LONG_SCALE
           + (LONG_MIN + ((ilono + 1) * 1.0 / _CELLS26) * _LONG_SCALE)) / 2
    lat = (LAT_MIN + (ilato * 1.0 / _CELLS26) * _LAT_SCALE
           + (LAT_MIN + ((ilato + 1) * 1.0 / _CELLS26) * _LAT_SCALE)) / 2
    if lon > LONG_MAX:
        lon = LONG_MAX
    elif lon < LONG_MIN:
        lon = LONG_MIN
    if lat > LAT_MAX:
        lat = LAT_MAX
    elif lat < LAT_MIN:
        lat = LAT_MIN
    return lon, lat


def geohash_string(score: float) -> bytes:
    """GEOHASH's 11 characters: the position re-encoded over the standard -90..90 latitudes,
    5 bits a character; the 11th character is always '0' (only 52 bits exist)."""
    lon, lat = decode_score(score)
    bits = encode(lon, lat, STEP_MAX, -90.0, 90.0)
    out = bytearray()
    for i in range(10):
        out.append(_GEOALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F])
    out.append(_GEOALPHABET[0])
    return bytes(out)


# ------------------------------------------------------------------------------ distances


def _deg_rad(ang: float) -> float:
    return ang * _D_R


def _rad_deg(ang: float) -> float:
    return ang / _D_R


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine great-circle distance in meters (geohashGetDistance, Redis 7.0)."""
    lat1r = _deg_rad(lat1)
    lon1r = _deg_rad(lon1)
    lat2r = _deg_rad(lat2)
    lon2r = _deg_rad(lon2)
    u = math.sin((lat2r - lat1r) / 2)
    v = math.sin((lon2r - lon1r) / 2)
    return 2.0 * EARTH_RADIUS_IN_METERS * math.asin(
        math.sqrt(u * u + math.cos(lat1r) * math.cos(lat2r) * v * v))


# ------------------------------------------------------------------------------ search shapes


@dataclass(slots=True)
class Shape:
    """A search area (GeoShape): a circle (`radius`) or a box (`width` x `height`), in the
    caller's unit; `conversion` is meters per unit."""

    lon: float
    lat: float
    conversion: float
    radius: float | None = None
    width: float = 0.0
    height: float = 0.0

    def distance_if_inside(self) -> Callable[[float, float], float | None]:
        """A function of (lon, lat): the distance in meters from the centre when the point is
        inside, else None (geohashGetDistanceIfInRadiusWGS84 / geohashGetDistanceIfInRectangle
        of 7.0). The circle's test is `distance()` inlined, with the centre's terms computed
        once: the same operations in the same order, so the same bits."""
        if self.radius is None:
            half_w = self.width * self.conversion / 2
            half_h = self.height * self.conversion / 2
            x1, y1 = self.lon, self.lat

            def in_box(lon: float, lat: float) -> float | None:
                if (distance(lon, lat, x1, lat) > half_w
                        or distance(lon, lat, lon, y1) > half_h):
                    return None
                return distance(x1, y1, lon, lat)

            return in_box
        limit = self.radius * self.conversion
        lat1r = self.lat * _D_R
        lon1r = self.lon * _D_R
        cos1 = math.cos(lat1r)
        sin, cos, asin, sqrt = math.sin, math.cos, math.asin, math.sqrt
        diameter = 2.0 * EARTH_RADIUS_IN_METERS

        def in_circle(lon: float, lat: float) -> float | None:
            lat2r = lat * _D_R
            u = sin((lat2r - lat1r) / 2)
            v = sin((lon * _D_R - lon1r) / 2)
            dist = diameter * asin(sqrt(u * u + cos1 * cos(lat2r) * v * v))
            return None if dist > limit else dist

        return in_circle

    def lat_reach(self) -> float:
        """Degrees of latitude beyond which no point can be inside, with a margin far above
        rounding errors: a point's haversine distance is at least R * |delta latitude| (and the
        box's latitude test measures exactly that), so skipping points past this reach before
        computing their distance changes no result."""
        half = self.radius if self.radius is not None else self.height / 2
        meters = half * self.conversion * (1 + _REACH_MARGIN) + _REACH_MARGIN
        return _rad_deg(meters / EARTH_RADIUS_IN_METERS)

    def bounding_box(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of the area (geohashBoundingBox)."""
        circle = self.radius is not None
        height = self.conversion * (self.radius if circle else self.height / 2)  # type: ignore[operator]
        width = self.conversion * (self.radius if circle else self.width / 2)  # type: ignore[operator]
        lat_delta = _rad_deg(height / EARTH_RADIUS_IN_METERS)
        long_delta_top = _rad_deg(width / EARTH_RADIUS_IN_METERS
                                  / math.cos(_deg_rad(self.lat + lat_delta)))
        long_delta_bottom = _rad_deg(width / EARTH_RADIUS_IN_METERS
                                     / math.cos(_deg_rad(self.lat - lat_delta)))
        delta = long_delta_bottom if self.lat < 0 else long_delta_top
        return self.lon - delta, self.lat - lat_delta, self.lon + delta, self.lat + lat_delta

    def radius_meters(self) -> float:
        """The circle's radius, or the box's centre-to-corner distance, in meters."""
        if self.radius is not None:
            return self.radius * self.conversion
        half_w, half_h = self.width / 2, self.height / 2
        return math.sqrt(half_w * half_w + half_h * half_h) * self.conversion


def estimate_step(range_meters: float, lat: float) -> int:
    """The geohash precision whose cells are about the size of the search
    (geohashEstimateStepsByRadius): coarser towards the poles."""
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def _move(bits: int, step: int, d: int, axis: int, other: int) -> int:
    """geohash_move_x / geohash_move_y: one cell east/west (axis: the odd, longitude bits) or
    north/south (the even, latitude bits), wrapping around."""
    x = bits & axis
    y = bits & other
    zz = other >> (64 - step * 2)
    x = (x + (zz + 1)) & _M64 if d > 0 else ((x | zz) - (zz + 1)) & _M64
    return (x & (axis >> (64 - step * 2))) | y


_LON_BITS, _LAT_BITS = 0xAAAAAAAAAAAAAAAA, 0x5555555555555555
#: neighbour order of membersOfAllNeighbors after the centre, as (dx, dy)
_NEIGHBOURS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))


def _neighbours(bits: int, step: int) -> list[int]:
    out = []
    for dx, dy in _NEIGHBOURS:
        b = bits
        if dx:
            b = _move(b, step, dx, _LON_BITS, _LAT_BITS)
        if dy:
            b = _move(b, step, dy, _LAT_BITS, _LON_BITS)
        out.append(b)
    return out


def search_areas(shape: Shape) -> list[Hash]:
    """The nine cells to scan, centre first, dropped ones as ZERO
    (geohashCalculateAreasByShapeWGS84)."""
    min_lon, min_lat, max_lon, max_lat = shape.bounding_box()
    steps = estimate_step(shape.radius_meters(), shape.lat)
    bits = encode(shape.lon, shape.lat, steps)
    near = _neighbours(bits, steps)
    north, south = decode_area(near[0], steps), decode_area(near[1], steps)
    east, west = decode_area(near[2], steps), decode_area(near[3], steps)
    if steps > 1 and (north.lat_max < max_lat or south.lat_min > min_lat
                      or east.lon_max < max_lon or west.lon_min > min_lon):
        steps -= 1
        bits = encode(shape.lon, shape.lat, steps)
        near = _neighbours(bits, steps)
    area = decode_area(bits, steps)
    cells: list[Hash] = [(bits, steps)] + [(b, steps) for b in near]
    if steps >= 2:
        # indexes: 1 N, 2 S, 3 E, 4 W, 5 NE, 6 NW, 7 SE, 8 SW
        if area.lat_min < min_lat:
            for i in (2, 8, 7):
                cells[i] = ZERO
        if area.lat_max > max_lat:
            for i in (1, 5, 6):
                cells[i] = ZERO
        if area.lon_min < min_lon:
            for i in (4, 8, 6):
                cells[i] = ZERO
        if area.lon_max > max_lon:
            for i in (3, 7, 5):
                cells[i] = ZERO
    return cells


def score_range(cell: Hash) -> tuple[int, int]:
    """Scores [min, max) of the members inside a cell (scoresOfGeoHashBox)."""
    bits, step = cell
    shift = 52 - step * 2
    return (bits << shift) & _M64, ((bits + 1) << shift) & _M64


def cells_to_scan(cells: list[Hash]) -> list[Hash]:
    """The cells membersOfAllNeighbors scans: non-zero ones, skipping a cell equal to the last
    one scanned (never compared with the centre: Redis' `last_processed` is 0 there)."""
    out: list[Hash] = []
    last = 0
    for i, cell in enumerate(cells):
        if cell == ZERO:
            continue
        if last and cell == cells[last]:
            continue
        out.append(cell)
        last = i
    return out


# ------------------------------------------------------------------------------ searching

Point = tuple[float, bytes, float, float, float]
"""A match: (distance in meters, member, score, longitude, latitude)."""
ScanRange = Callable[[float, float], Iterable[tuple[float, bytes]]]
"""(lo, hi) -> the (score, member) pairs with lo <= score < hi, by score."""


#: Bound of the memo of decoded positions (score -> (latitude, longitude)), about 20 MB when
#: full; it is emptied when it reaches the bound. Decoding is a pure function of the score, so
#: the memo never goes stale, whatever the sets do.
POSITION_MEMO_MAX = 1 << 17
_positions: dict[float, tuple[float, float]] = {}


def _decode_cell_member(score: float) -> tuple[float, float]:
    """(latitude, longitude) of a score below 2**52 (inside a cell's range, where the cast and
    the longitude clamps of decode_score cannot apply), memoized: it is most of a search."""
    bits = int(score)
    odd = bits >> 1
    e = _EVEN16
    ilato = (e[bits & 0xFFFF] | e[(bits >> 16) & 0xFFFF] << 8 | e[(bits >> 32) & 0xFFFF] << 16
             | e[bits >> 48] << 24)
    ilono = (e[odd & 0xFFFF] | e[(odd >> 16) & 0xFFFF] << 8 | e[(odd >> 32) & 0xFFFF] << 16
             | e[odd >> 48] << 24)
    lat = (LAT_MIN + (ilato * 1.0 / _CELLS26) * _LAT_SCALE
           + (LAT_MIN + ((ilato + 1) * 1.0 / _CELLS26) * _LAT_SCALE)) / 2
    lat = min(max(lat, LAT_MIN), LAT_MAX)
    lon = (LONG_MIN + (ilono * 1.0 / _CELLS26) * _LONG_SCALE
           + (LONG_MIN + ((ilono + 1) * 1.0 / _CELLS26) * _LONG_SCALE)) / 2
    if len(_positions) >= POSITION_MEMO_MAX:
        _positions.clear()
    position = _positions[score] = (lat, lon)
    return position


def search(scan: ScanRange, shape: Shape, limit: int) -> list[Point]:
    """The members inside `shape`, in the order Redis finds them (membersOfAllNeighbors): cell
    by cell, by score; with `limit` (COUNT ... ANY), stop once that many are found. Members
    past the shape's latitude reach are skipped before their distance is computed."""
    found: list[Point] = []
    inside = shape.distance_if_inside()
    append = found.append
    memo = _positions.get
    reach = shape.lat_reach()
    lat_lo, lat_hi = shape.lat - reach, shape.lat + reach
    for cell in cells_to_scan(search_areas(shape)):
        if found and limit and len(found) >= limit:
            break
        lo, hi = score_range(cell)
        for score, member in scan(float(lo), float(hi)):
            lat, lon = memo(score) or _decode_cell_member(score)
            if not lat_lo <= lat <= lat_hi:
                continue
            dist = inside(lon, lat)
            if dist is not None:
                append((dist, member, score, lon, lat))
                if limit and len(found) >= limit:
                    break
    return found
