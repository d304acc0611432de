/// <reference lib="dom" />
/**
 * The drawing pad: strokes from any pointer (mouse, touch, pen) over an
 * optional picture (an uploaded photo or a test digit), with undo. Ink is
 * black on white, like a pen on paper; `deno task infer`'s preprocessing
 * takes either polarity.
 */

interface Point {
  x: number;
  y: number;
}

export class DrawingPad {
  readonly canvas: HTMLCanvasElement;
  readonly #context: CanvasRenderingContext2D;
  #strokes: Point[][] = [];
  #picture: CanvasImageSource | null = null;
  #pictureSize = { width: 0, height: 0 };
  #drawing: Point[] | null = null;
  /** Pen width in canvas pixels: a 280-pixel pad at MNIST's stroke-to-size ratio. */
  lineWidth = 18;

  constructor(canvas: HTMLCanvasElement, readonly onChange: () => void) {
    this.canvas = canvas;
    this.#context = canvas.getContext("2d", { willReadFrequently: true })!;
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      this.#drawing = [this.#point(event)];
      this.#strokes.push(this.#drawing);
      this.redraw();
      this.onChange();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!this.#drawing) return;
      const events = event.getCoalescedEvents?.() ?? [event];
      for (const each of events.length > 0 ? events : [event]) {
        this.#drawing.push(this.#point(each));
      }
      this.redraw();
      this.onChange();
    });
    const end = () => {
      this.#drawing = null;
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    this.redraw();
  }

  #point(event: PointerEvent): Point {
    const box = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * this.canvas.width) / box.width,
      y: ((event.clientY - box.top) * this.canvas.height) / box.height,
    };
  }

  get isEmpty(): boolean {
    return this.#strokes.length === 0 && this.#picture === null;
  }

  undo(): void {
    if (this.#strokes.length > 0) this.#strokes.pop();
    else this.#picture = null;
    this.redraw();
    this.onChange();
  }

  clear(): void {
    this.#strokes = [];
    this.#picture = null;
    this.redraw();
    this.onChange();
  }

  /** Puts a picture under the strokes, fit and centred; strokes drawn so far are dropped. */
  setPicture(picture: CanvasImageSource, width: number, height: number): void {
    this.#strokes = [];
    this.#picture = picture;
    this.#pictureSize = { width, height };
    this.redraw();
    this.onChange();
  }

  redraw(): void {
    const context = this.#context;
    const { width, height } = this.canvas;
    context.fillStyle = "white";
    context.fillRect(0, 0, width, height);
    if (this.#picture) {
      const scale = Math.min(width / this.#pictureSize.width, height / this.#pictureSize.height);
      const w = this.#pictureSize.width * scale, h = this.#pictureSize.height * scale;
      context.imageSmoothingEnabled = true;
      context.drawImage(this.#picture, (width - w) / 2, (height - h) / 2, w, h);
    }
    context.strokeStyle = "black";
    context.fillStyle = "black";
    context.lineWidth = this.lineWidth;
    context.lineCap = "round";
    context.lineJoin = "round";
    for (const stroke of this.#strokes) {
      if (stroke.length === 1) {
        context.beginPath();
        context.arc(stroke[0].x, stroke[0].y, this.lineWidth / 2, 0, 2 * Math.PI);
        context.fill();
        continue;
      }
      context.beginPath();
      context.moveTo(stroke[0].x, stroke[0].y);
      for (const point of stroke.slice(1)) context.lineTo(point.x, point.y);
      context.stroke();
    }
  }

  /**
   * What to classify: a picture with nothing drawn over it at its own size,
   * so the lab reads an uploaded file's pixels exactly as `deno task infer`
   * reads the file (the pad shows it enlarged, which would blur a 16×16
   * scan); with strokes, the pad as shown.
   */
  source(): HTMLCanvasElement {
    if (!this.#picture || this.#strokes.length > 0) return this.canvas;
    const canvas = document.createElement("canvas");
    canvas.width = this.#pictureSize.width;
    canvas.height = this.#pictureSize.height;
    canvas.getContext("2d")!.drawImage(this.#picture, 0, 0);
    return canvas;
  }

  /** The RGBA pixels of `source()`. */
  pixels(): ImageData {
    const source = this.source();
    return source.getContext("2d", { willReadFrequently: true })!
      .getImageData(0, 0, source.width, source.height);
  }
}
