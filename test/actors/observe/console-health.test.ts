// The console's health and alerts from the running router: a TLS certificate expiring within 30 days
// is listed with its days left and raises the certificate alert; rules in force are listed.
import test from 'ava';
import { join } from 'node:path';
import { initLabCerts, LAB_FILES } from '../../../scripts/certs.ts';
import { inspectedRouter } from '../../helpers/inspected-router.ts';
import { tempDir } from '../../helpers/processes.ts';

test('a listener certificate expiring in 10 days: health lists it, the alert is raised and is a gauge', async (t) => {
  const certs = join(tempDir(), 'certs');
  initLabCerts(certs, { days: 10 });
  const { json, get } = await inspectedRouter(t, {
    rules: 'rules:\n  - name: keep\n    then: { drop: true }\n',
    listener: { tls: { key: join(certs, LAB_FILES.server.key), cert: join(certs, LAB_FILES.server.cert), ca: join(certs, LAB_FILES.ca.cert) } },
  });
  const view = await json('/api/console');
  const server = view.health.certificates.find((c: { role: string }) => c.role === 'certificate');
  t.truthy(server, JSON.stringify(view.health.certificates));
  t.true(server.daysLeft >= 9 && server.daysLeft <= 10, String(server.daysLeft));
  const alert = view.alerts.find((a: { kind: string }) => a.kind === 'certificate-expiring');
  t.truthy(alert, JSON.stringify(view.alerts));
  t.regex(alert.message, /expires in (9|10) days/);
  t.deepEqual(view.health.rules.inForce.map((r: { name: string }) => r.name), ['keep']);
  t.is(view.health.rules.refused, null);
  t.regex(await (await get('/metrics')).text(), /dicom_router_alert\{kind="certificate-expiring",subject="[^"]+"\} 1/);
});
