import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ServiceNowClient } from '../mobilization/itsm/servicenow/client.js';
import { serviceNowItsm } from '../mobilization/itsm/servicenow/adapter.js';
import type { Itsm } from '../mobilization/itsm/index.js';
import type { Config } from '../config/index.js';
import { installWorkerRuntime } from './worker.js';

/** Connection options for any Temporal: the embedded dev server, a self-hosted cluster or Temporal Cloud. */
function temporalOptions(config: Config, address: string) {
  return {
    address,
    ...(config.temporal.tls ? { tls: true as const } : {}),
    ...(config.temporal.apiKey ? { apiKey: config.temporal.apiKey } : {}),
  };
}

export async function connectTemporal(config: Config, address: string) {
  const connection = await Connection.connect(temporalOptions(config, address));
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return { connection, client };
}

export function connectWorkerTemporal(config: Config, address: string): Promise<NativeConnection> {
  installWorkerRuntime();
  return NativeConnection.connect(temporalOptions(config, address));
}

export interface ItsmConnections {
  serviceNow: { url: string; user: string; password: string };
}

/** The ITSM golden tickets go to. */
export function createItsm(config: Config, connections: ItsmConnections): Itsm {
  return serviceNowItsm(serviceNowClient(config, connections.serviceNow));
}

export function serviceNowClient(config: Config, sn: { url: string; user: string; password: string }): ServiceNowClient {
  return new ServiceNowClient({ baseUrl: sn.url, user: sn.user, password: sn.password, incidentTable: config.serviceNow.incidentTable });
}
