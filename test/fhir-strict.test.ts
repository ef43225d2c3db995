import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createFhirApp } from '../src/fhir/server.js';
import { calendarDateExists, strictIssues } from '../src/fhir/strict.js';
import { buildFixture } from './fhir-fixtures.js';

const exprs = (issues: Array<{ expression?: string[] }>) => issues.flatMap((i) => i.expression ?? []);

describe('strict mode: calendar dates and contained resources', () => {
  it('calendarDateExists knows month lengths and leap years, and leaves partial dates alone', () => {
    for (const ok of ['2023-02-28', '2024-02-29', '2000-02-29', '2023-12-31', '2023-11-13T10:15:00+00:00', '2023', '2023-02']) {
      assert.equal(calendarDateExists(ok), true, ok);
    }
    for (const bad of ['2023-02-29', '1900-02-29', '2023-02-30', '2023-04-31', '2023-13-01', '2023-00-10', '2023-01-00', '2023-06-31T08:00:00Z']) {
      assert.equal(calendarDateExists(bad), false, bad);
    }
  });

  it('rejects impossible dates wherever a date, dateTime or instant element stands', () => {
    assert.deepEqual(exprs(strictIssues({ resourceType: 'Patient', birthDate: '2023-02-30' })), ['Patient.birthDate']);
    const obs = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'BP' },
      effectiveDateTime: '2023-04-31T10:00:00+00:00',
      issued: '2023-11-31T10:00:00.000+00:00',
      component: [{ code: { text: 'x' }, valuePeriod: { start: '2023-09-31T00:00:00Z' } }],
    };
    assert.deepEqual(exprs(strictIssues(obs)).sort(), ['Observation.component[0].valuePeriod.start', 'Observation.effectiveDateTime', 'Observation.issued']);
    assert.deepEqual(strictIssues({ ...obs, effectiveDateTime: '2023-04-30T10:00:00+00:00', issued: '2023-11-30T10:00:00.000+00:00', component: [] }), []);
  });

  it('applies required bindings and elements to contained resources', () => {
    const issues = strictIssues({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      subject: { reference: '#p1' },
      contained: [
        { resourceType: 'Patient', id: 'p1', gender: 'x', birthDate: '2023-02-30' },
        { resourceType: 'ServiceRequest', id: 'sr', status: 'active' },
      ],
    });
    const at = exprs(issues);
    assert.ok(at.includes('Observation.contained[0].gender'), JSON.stringify(issues));
    assert.ok(at.includes('Observation.contained[0].birthDate'), JSON.stringify(issues));
    assert.ok(at.includes('Observation.contained[1].intent'), JSON.stringify(issues));
    assert.ok(issues.some((i) => i.code === 'code-invalid' && i.expression?.[0] === 'Observation.contained[0].gender'));
  });

  it('the server answers those bodies 422 with an OperationOutcome, and compat mode stores them as sent', async () => {
    const body = JSON.stringify({ resourceType: 'Patient', birthDate: '2023-02-30', contained: [{ resourceType: 'Patient', gender: 'x' }] });
    const init = { method: 'POST', body, headers: { 'content-type': 'application/fhir+json' } };
    const strict = createFhirApp(buildFixture().store, { strict: true });
    const r = await strict.request('http://localhost/fhir/_session/s1/Patient', init);
    assert.equal(r.status, 422);
    const oo = (await r.json()) as { resourceType: string; issue: Array<{ expression?: string[] }> };
    assert.equal(oo.resourceType, 'OperationOutcome');
    assert.deepEqual(exprs(oo.issue).sort(), ['Patient.birthDate', 'Patient.contained[0].gender']);
    const compat = createFhirApp(buildFixture().store, {});
    assert.equal((await compat.request('http://localhost/fhir/_session/s1/Patient', init)).status, 201);
  });
});
