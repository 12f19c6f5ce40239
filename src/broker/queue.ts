/**
 * A FIFO with O(1) removal from the middle: queued work leaves early when its deadline passes or
 * its client disconnects, and that must not cost a scan of a 10,000-entry queue.
 *
 *   head ⇄ node ⇄ node ⇄ … ⇄ tail        each node knows its list, so remove() is O(1)
 */
export interface QueueNode<T> {
  value: T;
  prev: QueueNode<T> | undefined;
  next: QueueNode<T> | undefined;
  list: LinkedQueue<T> | undefined;
}

export class LinkedQueue<T> {
  private head: QueueNode<T> | undefined;
  private tail: QueueNode<T> | undefined;
  private size = 0;

  get length(): number {
    return this.size;
  }

  push(value: T): QueueNode<T> {
    const node: QueueNode<T> = { value, prev: this.tail, next: undefined, list: this };
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.size++;
    return node;
  }

  /** Puts a node back at the front (a retried request keeps its place in line). */
  unshift(value: T): QueueNode<T> {
    const node: QueueNode<T> = { value, prev: undefined, next: this.head, list: this };
    if (this.head) this.head.prev = node;
    else this.tail = node;
    this.head = node;
    this.size++;
    return node;
  }

  peek(): T | undefined {
    return this.head?.value;
  }

  shift(): T | undefined {
    const node = this.head;
    if (!node) return undefined;
    this.remove(node);
    return node.value;
  }

  /** Removes a node; a node already removed is ignored. */
  remove(node: QueueNode<T>): boolean {
    if (node.list !== this) return false;
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = node.next = undefined;
    node.list = undefined;
    this.size--;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let n = this.head; n; n = n.next) yield n.value;
  }
}
