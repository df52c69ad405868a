// The image with zoom and pan, the subject's box, and the focused category's parsing region.
import { type RefObject, useCallback, useEffect, useImperativeHandle, useLayoutEffect, useRef, useState } from "react";
import type { Assignment } from "../../api/types";
import { loadParsingMask, paintRegion, type ParsingMask } from "./mask";

export interface ViewerControls {
  zoomBy(factor: number): void;
  reset(): void;
}

interface View {
  zoom: number; // 1 = the whole image fits
  x: number; // stage offset in screen pixels
  y: number;
}

const MIN_ZOOM = 0.5;
const MAX_ZOOM = 16;

export function ImageViewer({
  assignment,
  parsingIds,
  regionName,
  controls,
}: {
  assignment: Assignment;
  parsingIds: number[] | null;
  regionName: string | null;
  controls: RefObject<ViewerControls | null>;
}) {
  const { image, subject } = assignment;
  const frame = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [size, setSize] = useState({ width: 0, height: 0 });
  const [view, setView] = useState<View>({ zoom: 1, x: 0, y: 0 });
  const [status, setStatus] = useState<"loading" | "ready" | "failed">("loading");
  const [mask, setMask] = useState<ParsingMask | null>(null);
  const drag = useRef<{ x: number; y: number; pointer: number } | null>(null);
  const [dragging, setDragging] = useState(false);

  const fit = size.width > 0 ? Math.min(size.width / image.width, size.height / image.height) * 0.96 : 1;
  const scale = fit * view.zoom;

  const centered = useCallback(
    (zoom: number): View => ({
      zoom,
      x: (size.width - image.width * fit * zoom) / 2,
      y: (size.height - image.height * fit * zoom) / 2,
    }),
    [size, image.width, image.height, fit],
  );

  // A new image, or a resized frame, starts fitted and centred.
  useLayoutEffect(() => setView(centered(1)), [assignment.id, centered]);
  useEffect(() => setStatus("loading"), [image.url]);

  useLayoutEffect(() => {
    const element = frame.current;
    if (!element) return;
    const observer = new ResizeObserver(([entry]) => {
      if (entry) setSize({ width: entry.contentRect.width, height: entry.contentRect.height });
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, []);

  /** Zooms by `factor` keeping the screen point (px, py) still. */
  const zoomAt = useCallback(
    (factor: number, px: number, py: number) =>
      setView((v) => {
        const zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, v.zoom * factor));
        const k = zoom / v.zoom;
        return { zoom, x: px - (px - v.x) * k, y: py - (py - v.y) * k };
      }),
    [],
  );

  useImperativeHandle(
    controls,
    () => ({
      zoomBy: (factor) => zoomAt(factor, size.width / 2, size.height / 2),
      reset: () => setView(centered(1)),
    }),
    [zoomAt, size, centered],
  );

  // Wheel zoom needs a non-passive listener to keep the page from scrolling.
  useEffect(() => {
    const element = frame.current;
    if (!element) return;
    const onWheel = (event: WheelEvent): void => {
      event.preventDefault();
      const box = element.getBoundingClientRect();
      zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
    };
    element.addEventListener("wheel", onWheel, { passive: false });
    return () => element.removeEventListener("wheel", onWheel);
  }, [zoomAt]);

  useEffect(() => {
    setMask(null);
    const url = subject.parsing_mask_url;
    if (!url) return;
    let live = true;
    loadParsingMask(url).then(
      (loaded) => live && setMask(loaded),
      () => undefined, // no overlay; the box still shows the subject
    );
    return () => {
      live = false;
    };
  }, [subject.parsing_mask_url]);

  useEffect(() => {
    const element = canvas.current;
    if (!element || !mask) return;
    paintRegion(element, mask, parsingIds ?? []);
  }, [mask, parsingIds]);

  const box = subject.bbox;
  const stageStyle = {
    width: image.width,
    height: image.height,
    transform: `translate(${view.x}px, ${view.y}px) scale(${scale})`,
  };

  return (
    <div
      ref={frame}
      className={"viewer" + (dragging ? " viewer--dragging" : "")}
      data-testid="viewer"
      onPointerDown={(event) => {
        if (event.button !== 0) return;
        event.currentTarget.setPointerCapture(event.pointerId);
        drag.current = { x: event.clientX, y: event.clientY, pointer: event.pointerId };
        setDragging(true);
      }}
      onPointerMove={(event) => {
        const start = drag.current;
        if (!start || start.pointer !== event.pointerId) return;
        const dx = event.clientX - start.x;
        const dy = event.clientY - start.y;
        drag.current = { ...start, x: event.clientX, y: event.clientY };
        setView((v) => ({ ...v, x: v.x + dx, y: v.y + dy }));
      }}
      onPointerUp={() => {
        drag.current = null;
        setDragging(false);
      }}
      onPointerCancel={() => {
        drag.current = null;
        setDragging(false);
      }}
      onDoubleClick={() => setView(centered(1))}
    >
      <div className="viewer__stage" style={stageStyle}>
        <img
          key={image.url}
          className="viewer__image"
          src={image.url}
          width={image.width}
          height={image.height}
          alt={`image ${image.id}`}
          draggable={false}
          onLoad={() => setStatus("ready")}
          onError={() => setStatus("failed")}
        />
        {mask && (
          <canvas
            ref={canvas}
            className="viewer__mask"
            width={mask.width}
            height={mask.height}
            data-testid="parsing-overlay"
          />
        )}
        {box && (
          <svg className="viewer__overlay" viewBox={`0 0 ${image.width} ${image.height}`} aria-hidden="true">
            <path
              className="viewer__veil"
              fillRule="evenodd"
              d={`M0 0H${image.width}V${image.height}H0Z M${box[0]} ${box[1]}h${box[2]}v${box[3]}h${-box[2]}Z`}
            />
            <rect
              className="viewer__box"
              x={box[0]}
              y={box[1]}
              width={box[2]}
              height={box[3]}
              vectorEffect="non-scaling-stroke"
              data-testid="subject-box"
            />
          </svg>
        )}
      </div>
      {status === "loading" && <div className="viewer__status">loading image…</div>}
      {status === "failed" && <div className="viewer__status viewer__status--error">the image could not be loaded</div>}
      <div className="viewer__hud">
        <span>{Math.round(scale * 100)}%</span>
        <span>
          {image.width}×{image.height}
        </span>
        {subject.shot_type && <span>{subject.shot_type.replace(/_/g, " ")}</span>}
        {regionName && (
          <span className={mask ? "viewer__hud-region" : undefined}>
            {mask ? `region: ${regionName}` : "no parsing mask: box only"}
          </span>
        )}
      </div>
    </div>
  );
}
