// Purse's contract for TypeScript: the services and messages generated from protos/
// (src/gen, by `npm run generate`), and clients over either transport.
//
//   const terminal = terminalClient({ baseUrl: "http://127.0.0.1:8080", apiKey });      // HTTP/JSON
//   const overGrpc = terminalClient({ baseUrl: "http://127.0.0.1:50051", apiKey, grpc: true });
//   const { membership } = await terminal.identifyCustomer({
//     identifier: { value: { case: "phone", value: "+380501234567" } },
//   });
//
// A refusal is a ConnectError: `code`, `message`, and `reasonOf(error)` /
// `fieldViolationsOf(error)` read its google.rpc details (ErrorInfo, BadRequest).
import { type Client, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService } from "./gen/purse/admin/v1/admin_service_pb.js";
import { PlatformService } from "./gen/purse/platform/v1/platform_service_pb.js";
import { TerminalService } from "./gen/purse/v1/terminal_service_pb.js";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

export { AdminService, PlatformService, TerminalService };
export * from "./gen/purse/v1/common_pb.js";
export * from "./gen/purse/v1/terminal_service_pb.js";

export interface ClientOptions {
  // The HTTP port (http://host:8080) for HTTP/JSON, or the gRPC port with `grpc: true`.
  baseUrl: string;
  // A terminal API key or sign-in token (terminal), an administrator API key or token
  // (admin), an operator key (platform); sent as `authorization: Bearer ...`.
  apiKey?: string;
  // Speak gRPC (HTTP/2) instead of HTTP/JSON (HTTP/1.1, the Connect protocol).
  grpc?: boolean;
  // Every call's deadline, in milliseconds.
  timeoutMs?: number;
}

const callTimeoutMsDefault = 5_000;

function bearer(apiKey: string): Interceptor {
  return (next) => async (request) => {
    request.header.set("authorization", `Bearer ${apiKey}`);
    return next(request);
  };
}

function transport(options: ClientOptions) {
  const interceptors = options.apiKey ? [bearer(options.apiKey)] : [];
  const defaultTimeoutMs = options.timeoutMs ?? callTimeoutMsDefault;
  if (options.grpc) {
    return createGrpcTransport({ baseUrl: options.baseUrl, interceptors, defaultTimeoutMs });
  }
  return createConnectTransport({
    baseUrl: options.baseUrl,
    httpVersion: "1.1",
    useBinaryFormat: false,
    interceptors,
    defaultTimeoutMs,
  });
}

export function terminalClient(options: ClientOptions): Client<typeof TerminalService> {
  return createClient(TerminalService, transport(options));
}

export function adminClient(options: ClientOptions): Client<typeof AdminService> {
  return createClient(AdminService, transport(options));
}

export function platformClient(options: ClientOptions): Client<typeof PlatformService> {
  return createClient(PlatformService, transport(options));
}

// The stable reason of a refusal (ErrorInfo.reason), or "" when it carries none.
export function reasonOf(error: unknown): string {
  const refusal = ConnectError.from(error);
  return refusal.findDetails(ErrorInfoSchema)[0]?.reason ?? "";
}

// Each wrong field of a refusal, by its proto path, with what is wrong with it.
export function fieldViolationsOf(error: unknown): Record<string, string> {
  const refusal = ConnectError.from(error);
  const violations: Record<string, string> = {};
  for (const badRequest of refusal.findDetails(BadRequestSchema)) {
    for (const violation of badRequest.fieldViolations) {
      violations[violation.field] = violation.description;
    }
  }
  return violations;
}
