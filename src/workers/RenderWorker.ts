/** Entry point of a render worker thread: renders tickets and seating plans off the main event loop. */
import * as WorkerRunner from "@effect/platform/WorkerRunner"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeWorkerRunner from "@effect/platform-node/NodeWorkerRunner"
import { Effect, Layer } from "effect"
import * as zlib from "node:zlib"
import { RenderFailed, RenderRequest } from "./RenderProtocol.js"
import { renderSeatingBytes } from "./SeatingSvg.js"
import { renderTicket } from "./TicketSvg.js"

const failed = (cause: unknown) => new RenderFailed({ message: cause instanceof Error ? cause.message : String(cause) })

// Plans are written into one buffer, kept and reused (a thread renders one thing at a time, and
// gzip reads the plan before the next render): a plan of 116,667 seats is 7 MB, and a new buffer
// for each stayed in memory until the thread's next collection, several at once when a sale's
// plans were redrawn one after the other.
let scratch = new Uint8Array(0)
const reused = (size: number) => {
  if (scratch.length < size) scratch = new Uint8Array(size)
  return scratch
}

const RenderRunner = WorkerRunner.layerSerialized(RenderRequest, {
  RenderTicket: (request) => Effect.try({ try: () => renderTicket(request), catch: failed }),
  RenderSeating: (request) =>
    Effect.try({ try: () => new Uint8Array(zlib.gzipSync(renderSeatingBytes(request, reused), { level: 6 })), catch: failed })
}).pipe(Layer.provide(NodeWorkerRunner.layer))

NodeRuntime.runMain(WorkerRunner.launch(RenderRunner))
