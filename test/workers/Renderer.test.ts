import { expect, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as zlib from "node:zlib"
import { Renderer } from "../../src/workers/Renderer.js"
import { renderSeatingBytes } from "../../src/workers/SeatingSvg.js"

layer(Renderer.Live, { excludeTestServices: true, timeout: "60 seconds" })("Renderer", (it) => {
  it.effect("renders tickets and gzipped seating plans in worker threads", () =>
    Effect.gen(function*() {
      const renderer = yield* Renderer
      const svg = yield* renderer.ticket({
        ticketId: "a4c5211f-2402-4de9-9664-b9e78454da35",
        concert: { id: "786d3bb4-a858-49ba-8803-15ffa2ec3678", name: "N", date: "2027-01-01", venue: "V" },
        user: { name: "U", email: "u@example.org" }
      })
      expect(svg).toContain("<desc>a4c5211f-2402-4de9-9664-b9e78454da35</desc>")
      const gzipped = yield* renderer.seating({ concertId: "c", name: "N", venue: "V", capacity: 850, purchased: 10 })
      expect(zlib.gunzipSync(gzipped).toString()).toContain("<desc>c|850|10</desc>")
    }))

  it.effect("the main thread keeps running while a 150,000-seat plan renders", () =>
    Effect.gen(function*() {
      const renderer = yield* Renderer
      let done = false
      let ranMeanwhile = false
      const render = yield* Effect.fork(
        renderer.seating({ concertId: "c", name: "N", venue: "V", capacity: 150_000, purchased: 75_000 }).pipe(
          Effect.ensuring(Effect.sync(() => (done = true)))
        )
      )
      // Rendered on this thread, the plan would be one synchronous block: nothing else could run
      // on the event loop before it was finished.
      setImmediate(() => (ranMeanwhile = !done))
      const plan = yield* Fiber.join(render)
      expect(ranMeanwhile).toBe(true)
      expect(zlib.gunzipSync(plan).toString()).toContain("<desc>c|150000|75000</desc>")
    }))

  it.effect("plans of every size after one another on the same threads are each exactly the plan drawn alone", () =>
    Effect.gen(function*() {
      const renderer = yield* Renderer
      const sizes = [150_000, 40, 3_000, 150_000, 7]
      for (const capacity of sizes) {
        const details = { concertId: "c", name: "Ñame", venue: "V", capacity, purchased: Math.floor(capacity / 3) }
        const alone = Buffer.from(renderSeatingBytes(details))
        // As many renders as threads: every thread draws each size in turn.
        const plans = yield* Effect.all(Array.from({ length: renderer.size }, () => renderer.seating(details)), {
          concurrency: "unbounded"
        })
        for (const plan of plans) expect(zlib.gunzipSync(plan).equals(alone)).toBe(true)
      }
    }))
})

// A layer of its own: its threads start with this test's first render.
layer(Renderer.Live, { excludeTestServices: true, timeout: "60 seconds" })("Renderer, started by a render", (it) => {
  it.effect("first renders interrupted at any moment while the threads start leave the renderer working", () =>
    Effect.gen(function*() {
      const renderer = yield* Renderer
      // Interrupted at once, after a turn of the scheduler, and while the threads start.
      for (const wait of [undefined, 0, 20] as const) {
        const first = yield* Effect.fork(renderer.seating({ concertId: "c", name: "N", venue: "V", capacity: 10, purchased: 1 }))
        if (wait === 0) yield* Effect.yieldNow()
        if (wait === 20) yield* Effect.sleep("20 millis")
        yield* Fiber.interrupt(first)
      }
      const plan = yield* renderer.seating({ concertId: "c", name: "N", venue: "V", capacity: 10, purchased: 2 }).pipe(
        Effect.timeout("30 seconds")
      )
      expect(zlib.gunzipSync(plan).toString()).toContain("<desc>c|10|2</desc>")
    }))
})
