"""Analytic anatomy of the synthetic patient (LPS, mm): body, spine, lungs, liver, tumours,
perfused territories. Shapes are evaluated at any points, so every image of the phantom
(CT, SPECT, CBCT through its rigid offset, PET) samples the same ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

# Label values of the anatomy map
OUTSIDE, SOFT_TISSUE, FAT, BONE, LUNG_RIGHT, LUNG_LEFT, FLUID, LIVER = 0, 1, 2, 3, 4, 5, 6, 7
FIRST_TUMOUR = 8

#: CT numbers (HU) of the tissues (typical non-contrast values)
HU = {OUTSIDE: -1000.0, SOFT_TISSUE: 40.0, FAT: -90.0, BONE: 700.0, LUNG_RIGHT: -720.0,
      LUNG_LEFT: -720.0, FLUID: 5.0, LIVER: 65.0}
TUMOUR_HU = 20.0


@dataclass(frozen=True)
class Ellipsoid:
    centre_mm: tuple[float, float, float]
    radii_mm: tuple[float, float, float]

    def contains(self, z, y, x):
        (cx, cy, cz), (a, b, c) = self.centre_mm, self.radii_mm
        return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0

    @property
    def volume_ml(self) -> float:
        return 4.0 / 3.0 * np.pi * float(np.prod(self.radii_mm)) / 1000.0


@dataclass(frozen=True)
class Tumour:
    name: str
    centre_mm: tuple[float, float, float]
    radius_mm: float
    tnr_maa: float
    tnr_y90: float

    @property
    def shape(self) -> Ellipsoid:
        return Ellipsoid(self.centre_mm, (self.radius_mm,) * 3)


@dataclass(frozen=True)
class Territory:
    """A perfused territory: the liver on one side of a plane n . p < d (or >= d)."""

    name: str
    normal: tuple[float, float, float]
    offset_mm: float
    below: bool

    def contains(self, z, y, x):
        nx, ny, nz = self.normal
        side = nx * x + ny * y + nz * z
        return side < self.offset_mm if self.below else side >= self.offset_mm


@dataclass(frozen=True)
class Sector:
    """A perfused territory: the liver within the angles ``start_deg`` to ``start_deg +
    width_deg`` around a craniocaudal (z) axis through ``axis_xy_mm``, angles measured in the
    axial plane from +x (patient left) towards +y (posterior); a width of 360 is the whole
    liver. The segments of the segmental patient are such wedges around the hilum."""

    name: str
    axis_xy_mm: tuple[float, float]
    start_deg: float
    width_deg: float

    def contains(self, z, y, x):
        ax, ay = self.axis_xy_mm
        angle = np.degrees(np.arctan2(np.asarray(y, dtype=float) - ay,
                                      np.asarray(x, dtype=float) - ax))
        inside = np.mod(angle - self.start_deg, 360.0) < self.width_deg
        return np.broadcast_to(inside, np.broadcast_shapes(np.shape(z), np.shape(inside)))

    @property
    def mid_deg(self) -> float:
        return self.start_deg + self.width_deg / 2.0


@dataclass(frozen=True)
class Anatomy:
    body: Ellipsoid            # elliptic cylinder: z radius is ignored
    fat_thickness_mm: float
    spine_centre_xy_mm: tuple[float, float]
    spine_radius_mm: float
    rib_pitch_mm: float
    rib_thickness_mm: float
    gallbladder: Ellipsoid
    lung_right: Ellipsoid
    lung_left: Ellipsoid
    liver: Ellipsoid
    diaphragm_mm: float
    tumours: tuple[Tumour, ...]
    territories: tuple[Territory | Sector, ...]

    def labels(self, z, y, x) -> np.ndarray:
        """Anatomy label at each point (broadcastable coordinate arrays)."""
        shape = np.broadcast_shapes(np.shape(z), np.shape(y), np.shape(x))
        out = np.zeros(shape, dtype=np.uint8)
        (bx, by, _), (ba, bb, _) = self.body.centre_mm, self.body.radii_mm
        rb = ((x - bx) / ba) ** 2 + ((y - by) / bb) ** 2
        t = self.fat_thickness_mm
        inner = ((x - bx) / (ba - t)) ** 2 + ((y - by) / (bb - t)) ** 2
        out[np.broadcast_to(rb <= 1.0, shape)] = FAT
        out[np.broadcast_to(inner <= 1.0, shape)] = SOFT_TISSUE
        sx, sy = self.spine_centre_xy_mm
        out[np.broadcast_to((x - sx) ** 2 + (y - sy) ** 2 <= self.spine_radius_mm ** 2,
                            shape)] = BONE
        # ribs: bands in the body wall, sloping down anteriorly, open at the sternum
        ring = (rb <= ((ba - t) / ba) ** 2) & (rb >= ((ba - t - 12.0) / ba) ** 2)
        phase = np.mod(z + 0.25 * y, self.rib_pitch_mm)
        rib = ring & (phase < self.rib_thickness_mm) & ~((np.abs(x) < 35.0) & (y < 0))
        out[np.broadcast_to(rib, shape)] = BONE
        grown = [Ellipsoid(l.centre_mm, tuple(r + self.diaphragm_mm for r in l.radii_mm))
                 for l in (self.lung_right, self.lung_left)]
        liver = self.liver.contains(z, y, x) & ~grown[0].contains(z, y, x) \
            & ~grown[1].contains(z, y, x)
        out[np.broadcast_to(liver, shape)] = LIVER
        out[np.broadcast_to(self.gallbladder.contains(z, y, x), shape)] = FLUID
        out[np.broadcast_to(self.lung_right.contains(z, y, x), shape)] = LUNG_RIGHT
        out[np.broadcast_to(self.lung_left.contains(z, y, x), shape)] = LUNG_LEFT
        for k, tumour in enumerate(self.tumours):
            inside = np.broadcast_to(tumour.shape.contains(z, y, x), shape)
            out[inside & (out == LIVER)] = FIRST_TUMOUR + k
        return out

    def territory(self, labels: np.ndarray, z, y, x) -> np.ndarray:
        """Territory index (1-based, 0 outside the liver) of liver and tumour points; where
        territories overlap, the first holds the point (as :meth:`tumour_territory`)."""
        shape = labels.shape
        out = np.zeros(shape, dtype=np.uint8)
        hepatic = labels >= LIVER
        for i, terr in enumerate(self.territories, start=1):
            out[hepatic & (out == 0) & np.broadcast_to(terr.contains(z, y, x), shape)] = i
        return out

    def tumour_territory(self, k: int) -> int:
        """Territory index (1-based) of tumour ``k``: the first territory holding its centre."""
        cx, cy, cz = self.tumours[k].centre_mm
        for i, terr in enumerate(self.territories, start=1):
            if terr.contains(cz, cy, cx):
                return i
        raise ValueError(f"tumour {self.tumours[k].name} lies in no territory")

    def hounsfield(self, labels: np.ndarray) -> np.ndarray:
        """Noise-free CT numbers of a label map."""
        lut = np.full(256, TUMOUR_HU, dtype=np.float32)
        for label, hu in HU.items():
            lut[label] = hu
        return lut[labels]


def default_anatomy() -> Anatomy:
    """The built-in patient: liver of about 1.7 L with three tumours in two territories."""
    return Anatomy(
        body=Ellipsoid((0.0, 0.0, 0.0), (165.0, 125.0, 1.0)),
        fat_thickness_mm=14.0,
        spine_centre_xy_mm=(0.0, 92.0), spine_radius_mm=18.0,
        rib_pitch_mm=28.0, rib_thickness_mm=9.0,
        gallbladder=Ellipsoid((-15.0, -55.0, -35.0), (14.0, 18.0, 28.0)),
        lung_right=Ellipsoid((-72.0, 12.0, 100.0), (58.0, 80.0, 75.0)),
        lung_left=Ellipsoid((75.0, 12.0, 105.0), (52.0, 75.0, 68.0)),
        liver=Ellipsoid((-40.0, 0.0, 5.0), (100.0, 78.0, 72.0)),
        diaphragm_mm=4.0,
        tumours=(Tumour("T1", (-78.0, -8.0, -5.0), 24.0, tnr_maa=3.2, tnr_y90=2.7),
                 Tumour("T2", (20.0, -22.0, 0.0), 17.0, tnr_maa=2.4, tnr_y90=2.6),
                 Tumour("T3", (-38.0, 34.0, -28.0), 12.0, tnr_maa=1.8, tnr_y90=1.6)),
        territories=(Territory("right hepatic", (1.0, 0.3, 0.0), -12.0, below=True),
                     Territory("left hepatic", (1.0, 0.3, 0.0), -12.0, below=False)),
    )


#: largest number of injection positions of the synthetic patient
MAX_POSITIONS = 8
#: position names of the segmental patient, in the order of the wedges around the hilum
#: (from the left lateral liver over the anterior to the right and posterior liver):
#: Couinaud-like names, the wedges are not Couinaud's anatomy
SEGMENT_NAMES = ("segment 2", "segment 3", "segment 4", "segment 5", "segment 6",
                 "segment 7", "segment 8", "segment 1")
#: the name of the single position of a whole-liver treatment
WHOLE_LIVER_NAME = "proper hepatic"
_SEGMENT_TNR_MAA = (3.2, 2.4, 1.8, 2.8, 3.6, 2.0, 2.6, 3.0)
_SEGMENT_TNR_Y90 = (2.7, 2.6, 1.6, 2.5, 3.1, 2.1, 2.4, 2.8)
_SEGMENT_RADII_MM = (20.0, 15.0, 17.0, 13.0, 18.0, 14.0, 16.0, 12.0)
_SECTOR_START_DEG = 30.0        # the first wedge ends here; the wedges go on anteriorly
_TUMOUR_MARGIN_MM = 7.0         # liver and wedge boundaries clear of every tumour by this


@lru_cache(maxsize=None)
def segmental_anatomy(positions: int) -> Anatomy:
    """The built-in patient with ``positions`` injection positions (1 to 8).

    2 is :func:`default_anatomy` (right and left hepatic). 1 is the same patient treated from
    one position (``proper hepatic``: the whole liver, tumours T1 to T3). 3 to 8 divide the
    liver into as many equal wedges around a craniocaudal axis through the liver centre,
    named ``segment 2``, ``segment 3``, ... (:data:`SEGMENT_NAMES`), each with one tumour
    (T1, T2, ... in the order of the segments) placed inside its wedge, clear of the liver
    surface, the gallbladder, the lungs and the wedge boundaries.
    """
    if isinstance(positions, bool) or not isinstance(positions, (int, np.integer)) \
            or not 1 <= positions <= MAX_POSITIONS:
        raise ValueError(f"positions: got {positions!r}; allowed: a whole number 1 to "
                         f"{MAX_POSITIONS}")
    base = default_anatomy()
    if positions == 2:
        return base
    (cx, cy, _), _ = base.liver.centre_mm, base.liver.radii_mm
    if positions == 1:
        return replace(base, territories=(Sector(WHOLE_LIVER_NAME, (cx, cy), 0.0, 360.0),))
    width = 360.0 / positions
    sectors = tuple(Sector(SEGMENT_NAMES[i], (cx, cy), _SECTOR_START_DEG - (i + 1) * width,
                           width) for i in range(positions))
    liver_only = replace(base, tumours=(), territories=sectors)
    tumours = tuple(_place_tumour(liver_only, sector, k) for k, sector in enumerate(sectors))
    return replace(base, tumours=tumours, territories=sectors)


def _place_tumour(anatomy: Anatomy, sector: Sector, k: int) -> Tumour:
    """The first sphere (largest radius first, then the candidate centres in a fixed order)
    that lies in the liver and in ``sector`` with a margin: deterministic, no randomness."""
    (cx, cy, cz), (a, b, _) = anatomy.liver.centre_mm, anatomy.liver.radii_mm
    theta = np.radians(sector.mid_deg)
    edge = 1.0 / math.sqrt((math.cos(theta) / a) ** 2 + (math.sin(theta) / b) ** 2)
    nominal = _SEGMENT_RADII_MM[k]
    for radius in np.arange(nominal, 7.9, -1.0):
        for fraction in (0.55, 0.5, 0.6, 0.45, 0.65, 0.4):
            for dz in (-10.0, 0.0, 10.0, -20.0, 20.0):
                d = fraction * edge
                centre = (round(cx + d * math.cos(theta), 1), round(cy + d * math.sin(theta), 1),
                          cz + dz)
                if _sphere_fits(anatomy, sector, centre, radius + _TUMOUR_MARGIN_MM):
                    return Tumour(f"T{k + 1}", centre, float(radius),
                                  tnr_maa=_SEGMENT_TNR_MAA[k], tnr_y90=_SEGMENT_TNR_Y90[k])
    raise ValueError(f"no room for a tumour in {sector.name}")  # pragma: no cover


def _sphere_fits(anatomy: Anatomy, sector: Sector, centre, radius: float) -> bool:
    step = 1.5
    offsets = np.arange(-radius, radius + step / 2, step)
    dz, dy, dx = np.meshgrid(offsets, offsets, offsets, indexing="ij")
    ball = dx ** 2 + dy ** 2 + dz ** 2 <= radius ** 2
    x, y, z = centre[0] + dx[ball], centre[1] + dy[ball], centre[2] + dz[ball]
    return bool(np.all(anatomy.labels(z, y, x) == LIVER) and np.all(sector.contains(z, y, x)))
