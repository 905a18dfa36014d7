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

const RenderRunner = WorkerRunner.layerSerialized(RenderRequest, {
  RenderTicket: (request) => Effect.try({ try: () => renderTicket(request), catch: failed }),
  RenderSeating: (request) =>
    Effect.try({ try: () => new Uint8Array(zlib.gzipSync(renderSeatingBytes(request), { level: 6 })), catch: failed })
}).pipe(Layer.provide(NodeWorkerRunner.layer))

NodeRuntime.runMain(WorkerRunner.launch(RenderRunner))
