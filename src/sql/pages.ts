import { Effect, FiberRef, Option, Stream } from "effect"
import { CurrentOrganiser } from "../domain/Organiser.js"

/** Wraps the reading of one page of a list (the HTTP layer has them made one at a time). */
export type PageGate = <A>(page: Effect.Effect<A>) => Effect.Effect<A>

/**
 * A list read a page at a time with a keyset condition: `read(cursor)` reads the page after
 * `cursor`, `cursorOf` says where a full page ends (none after a short page). The first page is
 * read before this returns, so an unavailable database fails here, not mid-answer; the rest
 * are read as the stream is pulled, while the response is written: in the organiser's database
 * the first was read in, whichever fiber pulls them.
 */
export const keysetPages = <Row, Cursor>(
  first: Cursor,
  read: (after: Cursor) => Effect.Effect<ReadonlyArray<Row>>,
  size: number,
  cursorOf: (last: Row) => Cursor
): Effect.Effect<Stream.Stream<ReadonlyArray<Row>>> => {
  const next = (rows: ReadonlyArray<Row>): Option.Option<Cursor> => {
    const last = rows.at(-1)
    return rows.length < size || last === undefined ? Option.none() : Option.some(cursorOf(last))
  }
  return Effect.flatMap(FiberRef.get(CurrentOrganiser), (organiser) =>
    Effect.map(read(first), (page) =>
      Stream.concat(
        Stream.succeed(page),
        Option.match(next(page), {
          onNone: () => Stream.empty,
          onSome: (after) =>
            Stream.paginateEffect(after, (cursor) =>
              Effect.map(Effect.locally(read(cursor), CurrentOrganiser, organiser), (rows) => [rows, next(rows)] as const))
        })
      )))
}
