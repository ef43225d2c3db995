"""MedAgentBench episodes from `ehrgym env serve` as a TRL `environment_factory` class.

Python 3 standard library only: the class speaks the Open Reward Standard (HTTP + server-sent events) to the
server itself, so it runs wherever TRL runs. Its public methods are the environment's tools (TRL builds the tool
schemas from their signatures and `Args:` docstrings), `reset(**row)` opens a fresh episode for a dataset row and
returns the prompt, and `reward` / `reward_components` hold the grade once the model calls `finish`.

    ehrgym env serve --port 8091            # in another terminal
    EHRGYM_ENV_URL=http://127.0.0.1:8091 python train.py

    from trl import GRPOConfig, GRPOTrainer
    from trl_medagentbench import MedAgentBenchEnv, reward_func, train_dataset
    trainer = GRPOTrainer(
        model="Qwen/Qwen3-4B",
        args=GRPOConfig(max_tool_calling_iterations=8),
        train_dataset=datasets.Dataset.from_list(train_dataset()),
        environment_factory=MedAgentBenchEnv,
        reward_funcs=reward_func,
    )

`python3 trl_medagentbench.py --selftest URL` plays the first test task against a running server and prints the
result as one JSON line.
"""

import json
import os
import re
import sys
import urllib.error
import urllib.request
from typing import Optional

ENV_URL = os.environ.get("EHRGYM_ENV_URL", "http://127.0.0.1:8091")
ENV_NAME = "medagentbench"


class ORSError(RuntimeError):
    pass


class ORSClient:
    """The ORS calls an episode needs, as the reference client makes them."""

    def __init__(self, base_url: str, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, path: str, body=None, sid: Optional[str] = None, sse: bool = False):
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if sid is not None:
            headers["X-Session-ID"] = sid
        if sse:
            headers["Accept"] = "text/event-stream"
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                if sse:
                    return self._events(resp)
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            raise ORSError(f"{method} {path}: HTTP {e.code}: {detail}") from None

    @staticmethod
    def _events(resp):
        """SSE events as (event, data), data lines joined with newlines and left-stripped as the reference client."""
        events, event, data = [], None, []
        for raw in resp:
            line = raw.decode("utf-8", "ignore").rstrip("\r\n")
            if not line:
                if event:
                    events.append((event, "\n".join(data)))
                event, data = None, []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.lstrip()
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
        return events

    def create_session(self) -> str:
        for event, data in self._request("POST", "/create_session", sse=True):
            if event == "task_id":
                return data.strip()
        raise ORSError("create_session: no task_id event")

    def create(self, sid: str, split: str, index: int) -> None:
        self._request("POST", "/create", {"split": split, "index": index}, sid=sid)

    def prompt(self, sid: str) -> str:
        blocks = self._request("GET", f"/{ENV_NAME}/prompt", sid=sid)
        return "".join(b["text"] for b in blocks if b.get("type") == "text")

    def call(self, sid: str, name: str, arguments: dict) -> dict:
        pieces = []
        for event, data in self._request("POST", f"/{ENV_NAME}/call", {"name": name, "input": arguments}, sid=sid, sse=True):
            if event == "error":
                raise ORSError(data or "call failed")
            if event in ("chunk", "end"):
                pieces.append(data)
        return json.loads("".join(pieces))

    def delete(self, sid: str) -> None:
        self._request("POST", "/delete", sid=sid)
        self._request("POST", "/delete_session", sid=sid)

    def num_tasks(self, split: str) -> int:
        return self._request("POST", f"/{ENV_NAME}/num_tasks", {"split": split})["num_tasks"]

    def task(self, split: str, index: int) -> dict:
        return self._request("POST", f"/{ENV_NAME}/task", {"split": split, "index": index})["task"]


def _args(**kwargs) -> dict:
    return {k: v for k, v in kwargs.items() if v is not None}


class MedAgentBenchEnv:
    """One MedAgentBench episode per `reset`; the tools are the methods below."""

    def __init__(self):
        self.client = ORSClient(ENV_URL)
        self.sid: Optional[str] = None
        self.reward = 0.0
        self.finished = False
        self.reward_components: dict = {}
        self.explanation = ""

    def reset(self, **kwargs) -> str:
        """Open a fresh episode for a dataset row (`split`, `index`); returns the task prompt."""
        if self.sid is not None:
            self.client.delete(self.sid)
        self.reward, self.finished, self.reward_components, self.explanation = 0.0, False, {}, ""
        self.sid = self.client.create_session()
        self.client.create(self.sid, kwargs.get("split", "train"), int(kwargs.get("index", 0)))
        return self.client.prompt(self.sid)

    def _call(self, name: str, arguments: dict) -> str:
        if self.sid is None:
            raise ValueError("call reset first")
        result = self.client.call(self.sid, name, arguments)
        if not result["ok"]:
            raise ValueError(result["error"])
        out = result["output"]
        if out.get("reward") is not None:
            self.reward = float(out["reward"])
        self.finished = bool(out.get("finished"))
        meta = out.get("metadata") or {}
        if self.finished:
            self.reward_components = meta.get("reward_components") or {}
            self.explanation = meta.get("explanation") or ""
        return "".join(b["text"] for b in out["blocks"] if b.get("type") == "text")

    def condition_search(self, patient: str, category: Optional[str] = None) -> str:
        """Retrieve problems (conditions) from a patient's chart.

        Args:
            patient: Reference to the patient (the MRN).
            category: Always "problem-list-item".
        """
        return self._call("condition_search", _args(patient=patient, category=category))

    def observation_search_labs(self, patient: str, code: str, date: Optional[str] = None) -> str:
        """Retrieve lab results of a patient.

        Args:
            patient: Reference to the patient (the MRN).
            code: The observation identifier (base name), e.g. "MG".
            date: Date when the specimen was obtained, e.g. "ge2023-11-12T10:15:00+00:00".
        """
        return self._call("observation_search_labs", _args(patient=patient, code=code, date=date))

    def observation_search_vitals(self, patient: str, category: str = "vital-signs", date: Optional[str] = None) -> str:
        """Retrieve vital signs of a patient.

        Args:
            patient: Reference to the patient (the MRN).
            category: Use "vital-signs".
            date: The date range for when the observation was taken.
        """
        return self._call("observation_search_vitals", _args(patient=patient, category=category, date=date))

    def observation_create(self, resourceType: str, category: list, code: dict, effectiveDateTime: str, status: str, valueString: str, subject: dict) -> str:
        """File a vital sign observation.

        Args:
            resourceType: Use "Observation".
            category: The category codings, e.g. vital-signs.
            code: The code of the observation, e.g. {"text": "BP"}.
            effectiveDateTime: When the observation was taken, ISO format.
            status: Use "final".
            valueString: The measurement value.
            subject: The patient, e.g. {"reference": "Patient/S1234567"}.
        """
        return self._call("observation_create", _args(resourceType=resourceType, category=category, code=code, effectiveDateTime=effectiveDateTime, status=status, valueString=valueString, subject=subject))

    def medication_request_search(self, patient: str, category: Optional[str] = None, date: Optional[str] = None) -> str:
        """Retrieve medication orders of a patient.

        Args:
            patient: The patient's MRN.
            category: The category of medication orders (Inpatient, Outpatient, Community, Discharge).
            date: The medication administration date.
        """
        return self._call("medication_request_search", _args(patient=patient, category=category, date=date))

    def medication_request_create(self, resourceType: str, medicationCodeableConcept: dict, authoredOn: str, dosageInstruction: list, status: str, intent: str, subject: dict) -> str:
        """Order a medication.

        Args:
            resourceType: Use "MedicationRequest".
            medicationCodeableConcept: The medication, e.g. an NDC coding.
            authoredOn: When the prescription was written, ISO format.
            dosageInstruction: Route, dose and rate.
            status: Use "active".
            intent: Use "order".
            subject: The patient, e.g. {"reference": "Patient/S1234567"}.
        """
        return self._call("medication_request_create", _args(resourceType=resourceType, medicationCodeableConcept=medicationCodeableConcept, authoredOn=authoredOn, dosageInstruction=dosageInstruction, status=status, intent=intent, subject=subject))

    def procedure_search(self, patient: str, date: str, code: Optional[str] = None) -> str:
        """Retrieve procedures of a patient.

        Args:
            patient: Reference to the patient (the MRN).
            date: Date or period the procedure was performed.
            code: External CPT code of the procedure.
        """
        return self._call("procedure_search", _args(patient=patient, date=date, code=code))

    def service_request_create(self, resourceType: str, code: dict, authoredOn: str, status: str, intent: str, priority: str, subject: dict, note: Optional[dict] = None, occurrenceDateTime: Optional[str] = None) -> str:
        """Order a service (referral, lab test, imaging).

        Args:
            resourceType: Use "ServiceRequest".
            code: The codes of the service, e.g. a LOINC or SNOMED coding.
            authoredOn: The order instant, ISO format.
            status: Use "active".
            intent: Use "order".
            priority: Use "stat".
            subject: The patient, e.g. {"reference": "Patient/S1234567"}.
            note: Free text comment, e.g. {"text": "..."}.
            occurrenceDateTime: When the service should be conducted, ISO format.
        """
        return self._call("service_request_create", _args(resourceType=resourceType, code=code, authoredOn=authoredOn, status=status, intent=intent, priority=priority, subject=subject, note=note, occurrenceDateTime=occurrenceDateTime))

    def patient_search(self, identifier: Optional[str] = None, family: Optional[str] = None, given: Optional[str] = None, birthdate: Optional[str] = None, name: Optional[str] = None, gender: Optional[str] = None) -> str:
        """Search for patients.

        Args:
            identifier: The patient's identifier (MRN).
            family: The patient's family (last) name.
            given: The patient's given name.
            birthdate: Date of birth, YYYY-MM-DD.
            name: Any part of the patient's name.
            gender: The patient's legal sex.
        """
        return self._call("patient_search", _args(identifier=identifier, family=family, given=given, birthdate=birthdate, name=name, gender=gender))

    def finish(self, answer: list) -> str:
        """Finish the episode with the list of answers the question asks for (an empty list when there is none).

        Args:
            answer: The answers, in the order the question asks for them.
        """
        return self._call("finish", {"answer": answer})


def reward_func(environments, **kwargs) -> list:
    """The episode reward (1.0 correct, 0.0 otherwise) of each rollout."""
    return [env.reward for env in environments]


def train_dataset(split: str = "train", url: str = ENV_URL) -> list:
    """Dataset rows for GRPOTrainer: the task prompt as the user turn, plus the split and index `reset` reads."""
    client = ORSClient(url)
    rows = []
    for i in range(client.num_tasks(split)):
        task = client.task(split, i)
        rows.append({"prompt": [{"role": "user", "content": task["instruction"]}], "split": split, "index": i, "task_id": task["id"]})
    return rows


def _selftest(url: str) -> None:
    global ENV_URL
    ENV_URL = url
    env = MedAgentBenchEnv()
    task = env.client.task("test", 0)
    prompt = env.reset(split="test", index=0)
    assert task["instruction"] in prompt, "the prompt carries the instruction"
    m = re.search(r"name (.+) (\S+) and DOB of (\d{4}-\d{2}-\d{2})", task["instruction"])
    assert m, task["instruction"]
    seen = env.patient_search(given=m.group(1), family=m.group(2), birthdate=m.group(3))
    mrns = sorted(set(re.findall(r"S\d{7}", seen)))
    try:
        env.no_such_tool = None
        env._call("no_such_tool", {})
        raise AssertionError("an unknown tool must fail")
    except ValueError:
        pass
    env.finish(answer=mrns[:1])
    env.client.delete(env.sid)
    failed = sorted(k for k, v in env.reward_components.items() if not v)
    print(json.dumps({"task_id": task["id"], "reward": env.reward, "finished": env.finished, "failed_components": failed}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--selftest":
        _selftest(sys.argv[2])
    else:
        print(__doc__)
