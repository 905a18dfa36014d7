import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Stream } from "effect"

/**
 * A JSON array answered as it is read, a page of items at a time: a tour's millions of tickets
 * or thousands of concerts never sit in memory at once, and the event loop serves other
 * requests between pages (each page is a database round trip).
 */
export const jsonArrayResponse = <A, E>(
  pages: Stream.Stream<ReadonlyArray<A>, E>,
  toJson: (item: A) => string
) =>
  HttpServerResponse.stream(
    pages.pipe(
      Stream.filter((page) => page.length > 0),
      Stream.mapAccum(true, (first, page) => [false, (first ? "" : ",") + page.map(toJson).join(",")] as const),
      (items) => Stream.concat(Stream.succeed("["), Stream.concat(items, Stream.succeed("]"))),
      Stream.encodeText
    ),
    { contentType: "application/json" }
  )
