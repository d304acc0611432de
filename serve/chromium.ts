/**
 * A headless Chromium driven over the DevTools protocol, for the lab's
 * browser test and its README screenshot. It uses the system's Chromium
 * (Debian's `chromium`): npm's browser drivers download a browser of their
 * own, which these machines cannot.
 */
import { existsSync } from "node:fs";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The Chromium executable: $CHROMIUM, else the first system one found, else undefined. */
export function findChromium(): string | undefined {
  const named = Deno.env.get("CHROMIUM");
  if (named) return named;
  return CANDIDATES.find((path) => existsSync(path));
}

type Message = {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
};

export class Chromium {
  readonly #process: Deno.ChildProcess;
  readonly #socket: WebSocket;
  readonly #profile: string;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve(m: Message): void; reject(e: Error): void }>();
  readonly #listeners = new Set<(message: Message) => void>();

  private constructor(process: Deno.ChildProcess, socket: WebSocket, profile: string) {
    this.#process = process;
    this.#socket = socket;
    this.#profile = profile;
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data) as Message;
      if (message.id !== undefined) {
        const waiter = this.#waiting.get(message.id);
        this.#waiting.delete(message.id);
        if (message.error) waiter?.reject(new Error(message.error.message));
        else waiter?.resolve(message);
      } else {
        for (const listener of this.#listeners) listener(message);
      }
    };
  }

  static async launch(options: { width?: number; height?: number } = {}): Promise<Chromium> {
    const executable = findChromium();
    if (!executable) {
      throw new Error("No Chromium found: apt-get install chromium, or set CHROMIUM to one.");
    }
    const profile = await Deno.makeTempDir({ prefix: "lab-chromium-" });
    const process = new Deno.Command(executable, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        `--window-size=${options.width ?? 1280},${options.height ?? 900}`,
        `--user-data-dir=${profile}`,
        "--remote-debugging-port=0",
        "about:blank",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Chromium names its DevTools endpoint on stderr.
    const reader = process.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const deadline = setTimeout(() => process.kill("SIGKILL"), 30_000);
    let endpoint: string | undefined;
    while (!endpoint) {
      const { done, value } = await reader.read();
      if (done) break;
      seen += value;
      endpoint = seen.match(/DevTools listening on (ws:\/\/\S+)/)?.[1];
    }
    clearTimeout(deadline);
    if (!endpoint) {
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      throw new Error(`Chromium did not start: ${seen.trim().split("\n").at(-1) ?? "no output"}`);
    }
    // Keep draining stderr so Chromium never blocks on a full pipe.
    (async () => {
      while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
    })();
    const socket = new WebSocket(endpoint);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`Cannot connect to Chromium at ${endpoint}.`));
    });
    return new Chromium(process, socket, profile);
  }

  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Message> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#socket.send(JSON.stringify({ id, method, params, sessionId }));
    });
  }

  onEvent(listener: (message: Message) => void): void {
    this.#listeners.add(listener);
  }

  /** A new tab, attached, with its console errors and uncaught exceptions collected. */
  async newPage(): Promise<Page> {
    const created = await this.send("Target.createTarget", { url: "about:blank" });
    const attached = await this.send("Target.attachToTarget", {
      targetId: created.result!.targetId,
      flatten: true,
    });
    const page = new Page(this, attached.result!.sessionId as string);
    await page.send("Runtime.enable");
    await page.send("Log.enable");
    await page.send("Page.enable");
    return page;
  }

  async close(): Promise<void> {
    for (const { reject } of this.#waiting.values()) reject(new Error("Chromium closed."));
    this.#waiting.clear();
    this.#socket.close();
    try {
      this.#process.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.#process.status;
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}

export class Page {
  /** Console errors, uncaught exceptions and failed loads, as text. */
  readonly errors: string[] = [];

  constructor(readonly browser: Chromium, readonly sessionId: string) {
    browser.onEvent((message) => {
      if (message.sessionId !== sessionId) return;
      const params = message.params ?? {};
      if (message.method === "Runtime.consoleAPICalled" && params.type === "error") {
        const args = params.args as Array<{ value?: unknown; description?: string }>;
        this.errors.push(`console.error: ${args.map((a) => a.value ?? a.description).join(" ")}`);
      } else if (message.method === "Runtime.exceptionThrown") {
        const details = params.exceptionDetails as {
          text: string;
          exception?: { description?: string };
        };
        this.errors.push(`exception: ${details.exception?.description ?? details.text}`);
      } else if (message.method === "Log.entryAdded") {
        const entry = params.entry as { level: string; text: string; url?: string };
        if (entry.level === "error") this.errors.push(`log: ${entry.text} ${entry.url ?? ""}`);
      }
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Message> {
    return this.browser.send(method, params, this.sessionId);
  }

  async goto(url: string): Promise<void> {
    await this.send("Page.navigate", { url });
    await this.waitFor("document.readyState === 'complete'");
  }

  /** The value of a JavaScript expression in the page (promises awaited). */
  async evaluate<T>(expression: string): Promise<T> {
    const { result } = await this.send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    const details = result!.exceptionDetails as {
      text: string;
      exception?: { description?: string };
    } | undefined;
    if (details) {
      throw new Error(`In the page: ${details.exception?.description ?? details.text}`);
    }
    return (result!.result as { value: T }).value;
  }

  /** Polls until `expression` is truthy in the page. */
  async waitFor(expression: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(`Boolean(${expression})`))) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out after ${timeoutMs} ms waiting for ${expression}.`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Drags the mouse through `points` (page coordinates) with the left button down. */
  async drag(points: Array<[number, number]>): Promise<void> {
    const mouse = (type: string, [x, y]: [number, number]) =>
      this.send("Input.dispatchMouseEvent", {
        type,
        x,
        y,
        button: "left",
        buttons: type === "mouseReleased" ? 0 : 1,
        clickCount: 1,
      });
    await mouse("mousePressed", points[0]);
    for (const point of points.slice(1)) await mouse("mouseMoved", point);
    await mouse("mouseReleased", points.at(-1)!);
  }

  /** Chooses `files` in the file input matching `selector`, as a person picking them would. */
  async setFiles(selector: string, files: string[]): Promise<void> {
    const { result: document } = await this.send("DOM.getDocument");
    const root = (document!.root as { nodeId: number }).nodeId;
    const { result: found } = await this.send("DOM.querySelector", { nodeId: root, selector });
    const nodeId = found!.nodeId as number;
    if (!nodeId) throw new Error(`No element matches ${selector}.`);
    await this.send("DOM.setFileInputFiles", { nodeId, files });
  }

  async screenshot(): Promise<Uint8Array> {
    const { result } = await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
    });
    return Uint8Array.from(atob(result!.data as string), (c) => c.charCodeAt(0));
  }
}
