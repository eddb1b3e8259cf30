/**
 * The part of Preact's API the dashboard uses, typed without the DOM library: Preact's own
 * types pull `lib="dom"` into the one program `deno check` builds for the whole project, where
 * it conflicts with Deno's types. The views import Preact with `@ts-types` pointing here.
 */

/** A virtual DOM node. */
export interface VNode {
  readonly type: unknown;
  readonly props: unknown;
}

/** Creates a virtual DOM node (what htm calls for every tag). */
export function h(type: unknown, props: unknown, ...children: unknown[]): VNode;

/** Renders `vnode` into `parent` (a DOM element), diffing against what is there. */
export function render(vnode: VNode | null, parent: unknown): void;
