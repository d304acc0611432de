/**
 * Headless Chromium for the lab's browser test and its README screenshot,
 * driven by puppeteer-core: it downloads no browser and drives the system's
 * (Debian's `chromium`). `Page` keeps to what the lab's driver needs: a
 * JavaScript expression's value, waiting for one, a mouse drag, a file
 * chosen in an input, a screenshot, and the errors the page logged.
 */
import { existsSync } from "node:fs";
import { puppeteer, type PuppeteerBrowser, type PuppeteerPage } from "../deps_browser.ts";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/**
 * The Chromium executable: $CHROMIUM when set (undefined if it names no
 * file), else the first system one found, else undefined.
 */
export function findChromium(): string | undefined {
  const named = Deno.env.get("CHROMIUM");
  if (named) return existsSync(named) ? named : undefined;
  return CANDIDATES.find((path) => existsSync(path));
}

/**
 * Chromium's flags as root in a closed network: no sandbox (root), and none
 * of the background connections a closed network refuses many at a time.
 */
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

export class Chromium {
  private constructor(readonly browser: PuppeteerBrowser) {}

  static async launch(options: { width?: number; height?: number } = {}): Promise<Chromium> {
    const executablePath = findChromium();
    if (!executablePath) {
      throw new Error(
        "No Chromium found: apt-get install chromium, or set CHROMIUM to its executable.",
      );
    }
    const width = options.width ?? 1280, height = options.height ?? 900;
    return new Chromium(
      await puppeteer.launch({
        executablePath,
        headless: true,
        args: [...FLAGS, `--window-size=${width},${height}`],
        defaultViewport: { width, height },
      }),
    );
  }

  /** A new tab with its console errors, uncaught exceptions and failed loads collected. */
  async newPage(): Promise<Page> {
    return new Page(await this.browser.newPage());
  }

  async close(): Promise<void> {
    await this.browser.close();
  }
}

export class Page {
  /** Console errors, uncaught exceptions and failed requests, as text. */
  readonly errors: string[] = [];

  constructor(readonly page: PuppeteerPage) {
    page.on("console", (message) => {
      if (message.type() === "error") this.errors.push(`console.error: ${message.text()}`);
    });
    page.on("pageerror", (error) => this.errors.push(`exception: ${String(error)}`));
    page.on("requestfailed", (request) => {
      this.errors.push(`failed: ${request.url()} ${request.failure()?.errorText ?? ""}`);
    });
  }

  async goto(url: string): Promise<void> {
    await this.page.goto(url, { waitUntil: "load" });
  }

  /** The value of a JavaScript expression in the page (promises awaited). */
  async evaluate<T>(expression: string): Promise<T> {
    return await this.page.evaluate(expression) as T;
  }

  /** Waits until `expression` is truthy in the page. */
  async waitFor(expression: string, timeoutMs = 20_000): Promise<void> {
    await this.page.waitForFunction(expression, { timeout: timeoutMs, polling: 50 });
  }

  /** Drags the mouse through `points` (page coordinates) with the left button down. */
  async drag(points: Array<[number, number]>): Promise<void> {
    const { mouse } = this.page;
    await mouse.move(...points[0]);
    await mouse.down();
    for (const point of points.slice(1)) await mouse.move(...point);
    await mouse.up();
  }

  /** Chooses `files` in the file input matching `selector`, as a person picking them would. */
  async setFiles(selector: string, files: string[]): Promise<void> {
    const input = await this.page.$(selector);
    if (!input) throw new Error(`No element matches ${selector}.`);
    await (input as unknown as { uploadFile(...paths: string[]): Promise<void> })
      .uploadFile(...files);
  }

  async screenshot(): Promise<Uint8Array> {
    return new Uint8Array(await this.page.screenshot({ type: "png", fullPage: true }));
  }
}
