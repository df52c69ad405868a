// Human-parsing masks: a grayscale PNG whose pixel values are ATR region ids (0 = background),
// as workers/inference/analyzers/masks.py writes them.

export interface ParsingMask {
  width: number;
  height: number;
  ids: Uint8Array;
}

const cache = new Map<string, Promise<ParsingMask>>();
const CACHE_SIZE = 8;

export function loadParsingMask(url: string): Promise<ParsingMask> {
  let loading = cache.get(url);
  if (loading === undefined) {
    loading = decode(url);
    loading.catch(() => cache.delete(url));
    cache.set(url, loading);
    for (const key of cache.keys()) {
      if (cache.size <= CACHE_SIZE) break;
      cache.delete(key);
    }
  }
  return loading;
}

async function decode(url: string): Promise<ParsingMask> {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`mask: HTTP ${response.status}`);
  // No colour management or premultiplication: the pixel values are ids, not colours.
  const bitmap = await createImageBitmap(await response.blob(), {
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  if (!context) throw new Error("mask: no 2d canvas");
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const ids = new Uint8Array(canvas.width * canvas.height);
  for (let i = 0; i < ids.length; i++) ids[i] = rgba[i * 4] ?? 0;
  return { width: canvas.width, height: canvas.height, ids };
}

/**
 * Paints the pixels whose id is in `parsingIds`: a light fill, and an opaque outline where the
 * region meets the rest, so that the region reads even when it covers most of the image.
 */
export function paintRegion(canvas: HTMLCanvasElement, mask: ParsingMask, parsingIds: number[]): void {
  const context = canvas.getContext("2d");
  if (!context) return;
  const wanted = new Uint8Array(256);
  for (const id of parsingIds) if (id >= 0 && id < 256) wanted[id] = 1;
  const { width, height, ids } = mask;
  const inside = (x: number, y: number): boolean =>
    x >= 0 && y >= 0 && x < width && y < height && wanted[ids[y * width + x] ?? 0] === 1;
  const out = context.createImageData(width, height);
  const pixels = out.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!inside(x, y)) continue;
      const edge = !inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1);
      const p = (y * width + x) * 4;
      pixels[p] = 255;
      pixels[p + 1] = 184;
      pixels[p + 2] = 28;
      pixels[p + 3] = edge ? 255 : 70;
    }
  }
  context.putImageData(out, 0, 0);
}
