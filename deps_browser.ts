/**
 * puppeteer-core, which drives an installed Chromium (it downloads none):
 * the lab's browser test and screenshot. Apart from deps.ts so that no
 * other process loads it.
 */
export { default as puppeteer } from "puppeteer-core";
export type { Browser as PuppeteerBrowser, Page as PuppeteerPage } from "puppeteer-core";
