/**
 * The browser entry of the client tests: bundled with `deno bundle --platform browser` into the
 * page of `browser_client_test.ts`, where it exposes the recorder to `page.evaluate`.
 * @module
 */

import { Recorder } from "./_client_recorder.ts";

(globalThis as unknown as { Recorder: typeof Recorder }).Recorder = Recorder;
