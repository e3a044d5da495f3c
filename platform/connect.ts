import { readFileSync } from 'node:fs';
import { InterceptingCall, Metadata, status, type Interceptor } from '@grpc/grpc-js';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor, type ConnectionOptions, type GrpcRetryOptions, type WorkflowClientInterceptor } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ServiceNowClient } from '../mobilization/itsm/servicenow/client.js';
import { serviceNowItsm, serviceNowPeople } from '../mobilization/itsm/servicenow/adapter.js';
import { defaultDemoOrganisation } from '../mobilization/itsm/servicenow/simulator.js';
import type { Itsm } from '../mobilization/itsm/index.js';
import { JiraClient } from '../mobilization/itsm/jira/client.js';
import { jiraItsm } from '../mobilization/itsm/jira/adapter.js';
import { PeopleDirectory, type DirectoryPerson, type People } from '../mobilization/itsm/people.js';
import type { Config } from '../config/index.js';
import { installWorkerRuntime } from './worker.js';

/**
 * Connection options for any Temporal: the embedded dev server, a self-hosted cluster or Temporal
 * Cloud (an API key, or mTLS with a client certificate). Files are read at each connection, so a
 * renewed certificate is taken at the next start of the process.
 */
export function temporalOptions(config: Config, address: string) {
  const files = config.temporal.tlsFiles;
  const tls = files
    ? {
        ...(files.cert && files.key ? { clientCertPair: { crt: readFileSync(files.cert), key: readFileSync(files.key) } } : {}),
        ...(files.ca ? { serverRootCACertificate: readFileSync(files.ca) } : {}),
        ...(files.serverName ? { serverNameOverride: files.serverName } : {}),
      }
    : config.temporal.tls
      ? (true as const)
      : undefined;
  return {
    address,
    ...(tls ? { tls } : {}),
    ...(config.temporal.apiKey ? { apiKey: config.temporal.apiKey } : {}),
  };
}

/**
 * The SDK's retry interceptor retries a failed call from a timer; if the connection was closed in
 * between (the platform stopping), the retry throws from that timer and takes the process down. This
 * interceptor sits below it and answers such a retry with CANCELLED once the connection is closed. A
 * first attempt goes through as before: on a closed channel it fails in its caller, which can catch it
 * (the SDK's retry cannot take a CANCELLED first attempt that carried no message).
 */
function closedConnectionGuard(): { interceptor: Interceptor; close(): void } {
  let closed = false;
  // The call options object is the same for every attempt of one call: seen once means a retry.
  const attempted = new WeakSet<object>();
  const interceptor: Interceptor = (options, nextCall) => {
    const retry = attempted.has(options);
    attempted.add(options);
    if (!closed || !retry) return new InterceptingCall(nextCall(options));
    const cancelled: ConstructorParameters<typeof InterceptingCall>[0] = {
      start(_metadata, listener) {
        setImmediate(() => listener?.onReceiveStatus?.({ code: status.CANCELLED, details: 'the Temporal connection was closed', metadata: new Metadata() }));
      },
      sendMessageWithContext() {},
      sendMessage() {},
      startRead() {},
      halfClose() {},
      cancelWithStatus() {},
      getPeer: () => '',
      getAuthContext: () => null,
    };
    return new InterceptingCall(cancelled);
  };
  return { interceptor, close: () => void (closed = true) };
}

/** A client Connection with the SDK's retries, whose close() also stops retries already scheduled. */
async function guardedConnection(options: ConnectionOptions, retry: GrpcRetryOptions = defaultGrpcRetryOptions()): Promise<Connection> {
  const guard = closedConnectionGuard();
  const connection = await Connection.connect({ ...options, interceptors: [makeGrpcRetryInterceptor(retry), guard.interceptor] });
  const close = connection.close.bind(connection);
  connection.close = async () => {
    guard.close();
    await close();
  };
  return connection;
}

/** `workflowInterceptors`: tracing's, so a workflow started here continues the caller's trace. */
export async function connectTemporal(config: Config, address: string, workflowInterceptors: WorkflowClientInterceptor[] = []) {
  const connection = await guardedConnection(temporalOptions(config, address));
  const client = new Client({ connection, namespace: config.temporal.namespace, ...(workflowInterceptors.length ? { interceptors: { workflow: workflowInterceptors } } : {}) });
  return { connection, client };
}

/**
 * The HTTP front's client. The SDK retries an unreachable server ten times (about 20 s) before a
 * call fails; the API answers 503 instead after three quick attempts, and the caller (a person, a
 * pipeline, ServiceNow's webhook) retries. Workers and start-up keep the patient client.
 */
export async function connectApiTemporal(config: Config, address: string, workflowInterceptors: WorkflowClientInterceptor[] = []) {
  const connection = await guardedConnection(temporalOptions(config, address), defaultGrpcRetryOptions({ maxAttempts: 3 }));
  const client = new Client({ connection, namespace: config.temporal.namespace, ...(workflowInterceptors.length ? { interceptors: { workflow: workflowInterceptors } } : {}) });
  return { connection, client };
}

export function connectWorkerTemporal(config: Config, address: string): Promise<NativeConnection> {
  installWorkerRuntime();
  return NativeConnection.connect(temporalOptions(config, address));
}

/** The people the embedded simulators know (the ServiceNow simulator's demo organisation). */
export const demoPeople: DirectoryPerson[] = defaultDemoOrganisation.map((u) => ({
  user: u.user_name,
  email: u.email,
  name: u.name,
  ...(u.manager ? { manager: u.manager } : {}),
  active: true,
}));

export interface ItsmConnections {
  serviceNow: { url: string; user: string; password: string };
  /** Set when CTEM_ITSM=jira; `embedded`: the simulator, whose people are the demo organisation. */
  jira?: { url: string; email: string; apiToken: string; embedded: boolean };
}

/**
 * Who manages whom for Jira: the people file when given, else a real ServiceNow's sys_user, else
 * the demo organisation when the Jira simulator runs, else nobody (a chain of the owner alone).
 */
function peopleFor(config: Config, connections: ItsmConnections): People {
  if (config.people) return new PeopleDirectory(config.people);
  if (config.serviceNow.url) return serviceNowPeople(serviceNowClient(config, connections.serviceNow));
  return new PeopleDirectory(connections.jira?.embedded ? demoPeople : []);
}

/** The ITSM golden tickets go to (CTEM_ITSM). */
export function createItsm(config: Config, connections: ItsmConnections): Itsm {
  if (config.itsm === 'servicenow') return serviceNowItsm(serviceNowClient(config, connections.serviceNow));
  const j = connections.jira;
  if (!j) throw new Error('CTEM_ITSM=jira but no Jira connection was made');
  return jiraItsm({
    client: new JiraClient({ baseUrl: j.url, email: j.email, apiToken: j.apiToken }),
    directory: peopleFor(config, connections),
    routing: config.jira.routing,
    issueType: config.jira.issueType,
    statusMap: config.jira.statusMap,
    priorities: config.jira.priorities,
  });
}

export function serviceNowClient(config: Config, sn: { url: string; user: string; password: string }): ServiceNowClient {
  return new ServiceNowClient({ baseUrl: sn.url, user: sn.user, password: sn.password, incidentTable: config.serviceNow.incidentTable });
}
