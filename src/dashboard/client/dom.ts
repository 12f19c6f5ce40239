/**
 * The few browser APIs the dashboard uses. The project's type check runs without the DOM library
 * (it would change Node's timer types for every file), so they are declared here, in module scope:
 * at run time the names are the browser's own globals.
 */

export interface Element {
  innerHTML: string;
  textContent: string | null;
  className: string;
  setAttribute(name: string, value: string): void;
}

interface Document {
  getElementById(id: string): Element | null;
  readonly body: Element;
  title: string;
}

export interface EventSourceLike {
  onmessage: ((event: { readonly data: string }) => void) | null;
  onopen: (() => void) | null;
  onerror: (() => void) | null;
}

declare const document: Document;
declare const EventSource: new (url: string) => EventSourceLike;

export function byId(id: string): Element {
  const el = document.getElementById(id);
  if (!el) throw new Error(`dashboard: #${id} is missing from the page`);
  return el;
}

export function body(): Element {
  return document.body;
}

export function setTitle(title: string): void {
  document.title = title;
}

/** Opens the event stream; the browser reconnects by itself after `retry` ms. */
export function subscribe(url: string): EventSourceLike {
  return new EventSource(url);
}

/** The text of an element the page may or may not carry. */
export function textOf(id: string): string | undefined {
  return document.getElementById(id)?.textContent ?? undefined;
}
