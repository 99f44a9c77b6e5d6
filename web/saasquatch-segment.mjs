// The ES module of the plugin: `import { saasquatchCookie } from "./saasquatch-segment.mjs"`.
// The code is the classic script's (one copy, no build step); importing it also sets the global
// `SaaSquatchSegment`, as the script tag does.
import "./saasquatch-segment.js";

const api = globalThis.SaaSquatchSegment;

export const saasquatchCookie = api.saasquatchCookie;
export const pushCookie = api.pushCookie;
export const cookieValue = api.cookieValue;
export default saasquatchCookie;
