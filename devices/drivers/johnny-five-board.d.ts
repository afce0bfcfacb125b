/** johnny-five's Board class module (lib/board.js, CommonJS: module.exports = Board); board-link.ts loads it alone. */
declare module 'johnny-five/lib/board.js' {
  import type { Board } from 'johnny-five';

  const BoardClass: typeof Board;
  export default BoardClass;
}
