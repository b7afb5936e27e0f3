/*
 * The workbench's notices in JupyterLab.
 *
 * The server extension (wb_lab_notices) emits each notice as a jupyter_server
 * event; this plugin listens on JupyterLab's event stream, shows the notice as
 * a notification that stays until dismissed and, when the notice asks for it,
 * saves every open document with unsaved changes and reports the count (and
 * any path that failed) back to the server.
 */
import { Notification } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

const SCHEMA_ID = 'urn:wbspawner:events:notice';

/** The open documents' contexts, each once (a document open twice shares one). */
function openContexts(app) {
  const contexts = new Set();
  for (const widget of app.shell.widgets('main')) {
    const context = widget.context;
    if (context && context.model && !context.isDisposed) {
      contexts.add(context);
    }
  }
  return [...contexts];
}

/** Save every open document with unsaved changes; what was saved and what failed. */
async function saveAll(app) {
  let documents = 0;
  const failed = [];
  for (const context of openContexts(app)) {
    if (!context.model.dirty) {
      continue;
    }
    try {
      await context.save();
      documents += 1;
    } catch (error) {
      console.error(`wb-lab-notices: could not save ${context.path}`, error);
      failed.push(context.path);
    }
  }
  return { documents, failed };
}

async function report(settings, id, saved) {
  const url = URLExt.join(
    settings.baseUrl,
    'wbspawner/notices',
    encodeURIComponent(id),
    'saved'
  );
  const response = await ServerConnection.makeRequest(
    url,
    { method: 'POST', body: JSON.stringify(saved) },
    settings
  );
  if (!response.ok) {
    console.error(`wb-lab-notices: report of ${id} refused: ${response.status}`);
  }
}

/** "Keep running" on a cull warning: a request to this server, which is use. */
async function keepRunning(settings, entry) {
  const url = URLExt.join(
    settings.baseUrl,
    'wbspawner/notices',
    encodeURIComponent(entry.notice.id),
    'answer'
  );
  const response = await ServerConnection.makeRequest(
    url,
    { method: 'POST', body: JSON.stringify({ keep: true }) },
    settings
  );
  // Clicking an action closes its toast: say what happened in a new one.
  if (response.ok) {
    Notification.success(
      'This server keeps running; it stops only after it has been idle for its full time again.',
      { autoClose: 8000 }
    );
  } else {
    Notification.error(
      `Could not keep the server running (${response.status}): use it, e.g. run a cell.`,
      { autoClose: false }
    );
  }
}

function savedText(saved) {
  if (saved.failed.length) {
    return `Could not save ${saved.failed.join(', ')}: save or download it now.`;
  }
  if (saved.documents === 1) {
    return 'Your open document was saved.';
  }
  return saved.documents
    ? `Your ${saved.documents} open documents were saved.`
    : 'Nothing was left unsaved.';
}

/**
 * The notices shown, by id: a notice sent again under its id (the hub's reason
 * for a stop whose preStop hook sent one too, in either order) updates its
 * notification and is not saved twice.
 */
const shown = new Map();

function show(entry, settings) {
  const { notice, saved } = entry;
  let message = notice.message;
  let type = notice.kind === 'info' ? 'info' : 'warning';
  if (entry.saving) {
    message += saved ? ` ${savedText(saved)}` : ' Saving your open documents…';
    if (saved && saved.failed.length) {
      type = 'error';
    }
  }
  const options = { autoClose: false };
  if (notice.kind === 'cull' && !entry.saving) {
    options.actions = [
      {
        label: 'Keep running',
        caption: 'Keep this server running and reset its idle time',
        displayType: 'accent',
        callback: () => {
          keepRunning(settings, entry).catch(error =>
            console.error('wb-lab-notices: keep running failed', error)
          );
        }
      }
    ];
  }
  if (entry.toast === undefined) {
    entry.toast = Notification.emit(message, type, options);
  } else {
    Notification.update({ id: entry.toast, message, type, ...options });
  }
}

async function onNotice(app, notice) {
  let entry = shown.get(notice.id);
  if (entry === undefined) {
    entry = { notice, saving: false, saved: null, toast: undefined };
    shown.set(notice.id, entry);
  } else if (notice.kind !== 'stop' || entry.notice.kind === 'stop') {
    // The preStop hook's plain "stop" never hides the reason the hub sent.
    entry.notice = notice;
  }
  const save = notice.save && !entry.saving;
  entry.saving = entry.saving || notice.save;
  const settings = app.serviceManager.serverSettings;
  show(entry, settings);
  if (!save) {
    return;
  }
  entry.saved = await saveAll(app);
  show(entry, settings);
  await report(app.serviceManager.serverSettings, notice.id, entry.saved);
}

const plugin = {
  id: 'wb-lab-notices:plugin',
  description:
    "Shows the workbench's notices and saves open documents when one asks.",
  autoStart: true,
  activate: app => {
    app.serviceManager.events.stream.connect((_, event) => {
      if (event.schema_id !== SCHEMA_ID) {
        return;
      }
      onNotice(app, event).catch(error =>
        console.error('wb-lab-notices: notice not handled', error)
      );
    });
  }
};

export default plugin;
