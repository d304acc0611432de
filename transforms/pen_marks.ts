/**
 * Stray pen marks for training-time clutter: anti-aliased polylines, solid or
 * dashed, drawn over an image the way a slipped pen or a ruled line on the
 * page would cross a digit. Generic by design (random count, path, width, ink
 * and dash); the robustness suite's line corruptions are not imported here.
 *
 * Pure on 28×28 images in [0, 1], ink bright on dark: a mark never darkens
 * ink that is already there (the brighter of mark and image wins).
 */
import type { Random } from "../util/random.ts";

const SIZE = 28;

export interface PenMark {
  /** Vertices in pixel coordinates (x, y), at least two. */
  points: ReadonlyArray<readonly [number, number]>;
  /** Stroke width in pixels. */
  width: number;
  /** Ink level of the mark's core, in (0, 1]. */
  ink: number;
  /** Dash period in pixels along the path, or 0 for a solid line. */
  dash: number;
}

/** A copy of `image` with `mark` drawn on it. */
export function drawPenMark(image: Float32Array, mark: PenMark): Float32Array {
  const out = image.slice();
  const half = mark.width / 2;
  let travelled = 0;
  for (let s = 1; s < mark.points.length; s++) {
    const [ax, ay] = mark.points[s - 1];
    const [bx, by] = mark.points[s];
    const dx = bx - ax, dy = by - ay;
    const length2 = dx * dx + dy * dy;
    const length = Math.sqrt(length2);
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        // Nearest point of the segment to the pixel's centre, as a fraction along it.
        const t = length2 === 0
          ? 0
          : Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / length2));
        const distance = Math.hypot(x - ax - t * dx, y - ay - t * dy);
        // One pixel of soft edge outside the core, as a pen's ink spreads.
        const coverage = Math.max(0, Math.min(1, half + 0.5 - distance));
        if (coverage === 0) continue;
        if (mark.dash > 0 && (travelled + t * length) % mark.dash >= mark.dash / 2) continue;
        const i = y * SIZE + x;
        out[i] = Math.max(out[i], mark.ink * coverage);
      }
    }
    travelled += length;
  }
  return out;
}

/** A random mark: 1 to 3 segments anywhere in the frame, width 0.8 to 2.2 px, dashed one time in three. */
export function randomPenMark(random: Random): PenMark {
  const vertices = 2 + random.int(3);
  const points = Array.from(
    { length: vertices },
    () => [random.uniform(0, SIZE - 1), random.uniform(0, SIZE - 1)] as const,
  );
  return {
    points,
    width: random.uniform(0.8, 2.2),
    ink: random.uniform(0.4, 1),
    dash: random.next() < 1 / 3 ? random.uniform(3, 7) : 0,
  };
}
