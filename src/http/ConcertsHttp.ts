import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { Api } from "../domain/Api.js"
import { ConcertEntity } from "../domain/ConcertEntity.js"
import { NotFound, Unavailable } from "../domain/Errors.js"
import { ConcertId } from "../domain/Ids.js"
import { ConcertsRepo } from "../sql/ConcertsRepo.js"
import { PrintQueue } from "../workers/PrintQueue.js"
import { SeatingPlans } from "../workers/SeatingPlans.js"
import { ClosedSales } from "./ClosedSales.js"
import { DatabaseHealth } from "./DatabaseHealth.js"
import { KnownConcerts } from "./KnownConcerts.js"
import { clusterUnavailable } from "./clusterErrors.js"
import { jsonArrayResponse } from "./jsonArray.js"
import { ListPages } from "./ListPages.js"
import { findOrNotFound } from "./lookup.js"
import { positiveInteger } from "../Settings.js"
import { concertJson } from "../domain/Concert.js"

const notFound = (id: string) => new NotFound({ message: `concert ${id} does not exist` })

export const ConcertsHttpLive = HttpApiBuilder.group(Api, "concerts", (handlers) =>
  Effect.gen(function*() {
    const concerts = yield* ConcertsRepo
    const health = yield* DatabaseHealth
    const concert = yield* ConcertEntity.client
    const closedSales = yield* ClosedSales
    const printQueue = yield* PrintQueue
    const seating = yield* SeatingPlans
    const knownConcerts = yield* KnownConcerts
    const listPages = yield* ListPages
    const listPageSize = yield* positiveInteger("TICKETS_PAGE_SIZE", 1000)

    const find = (id: string) => findOrNotFound(id, ConcertId.make, concerts.findById, "concert")

    return handlers
      .handle("health", () => health.check)
      .handle("list", () => Effect.map(concerts.list(listPageSize, listPages.one), (pages) => jsonArrayResponse(pages, concertJson)))
      .handle("create", ({ payload }) => Effect.tap(concerts.create(payload), (created) => knownConcerts.add(created.id)))
      .handle("get", ({ path }) => find(path.id))
      .handle("update", ({ path, payload }) =>
        knownConcerts.require(path.id).pipe(
          Effect.zipRight(concert(path.id).Update(payload)),
          Effect.tap((updated) => {
            closedSales.forget(path.id)
            return printQueue.concertChanged(path.id, updated.date)
          }),
          Effect.catchTags({
            ConcertNotFound: () => Effect.fail(notFound(path.id)),
            JournalUnavailable: () => Effect.fail(new Unavailable({ message: "the concert could not be saved; retry" })),
            ...clusterUnavailable
          }),
          Effect.withSpan("ConcertsHttp.update", { captureStackTrace: false, attributes: { concertId: path.id } })
        ))
      .handle("seats", ({ path, request }) =>
        Effect.gen(function*() {
          // A concert seen once is known without a query: a plan reader polling costs one look-up.
          yield* knownConcerts.require(path.id)
          const latest = yield* seating.latest(path.id)
          if (Option.isNone(latest)) {
            return yield* new Unavailable({ message: "the seating plan is being rendered; retry shortly", retryAfterSeconds: 1 })
          }
          const { etag, gzip } = latest.value
          const headers = { etag, vary: "accept-encoding", "cache-control": "no-cache" }
          const matches = (request.headers["if-none-match"] ?? "").split(",").map((tag) => tag.trim())
          if (matches.includes(etag) || matches.includes("*")) return HttpServerResponse.empty({ status: 304, headers })
          if (/\bgzip\b/.test(request.headers["accept-encoding"] ?? "")) {
            return HttpServerResponse.uint8Array(gzip, {
              contentType: "image/svg+xml",
              headers: { ...headers, "content-encoding": "gzip" }
            })
          }
          const svg = yield* seating.svg(path.id, latest.value)
          return HttpServerResponse.stream(seating.paced(svg), {
            contentType: "image/svg+xml",
            contentLength: svg.length,
            headers
          })
        }))
  })).pipe(
  Layer.provide([
    ConcertsRepo.Default,
    DatabaseHealth.Default,
    ClosedSales.Default,
    KnownConcerts.Default,
    ListPages.Default,
    SeatingPlans.Default
  ])
)
