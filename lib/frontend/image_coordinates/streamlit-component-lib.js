// The minimal Streamlit component API of streamlit-image-coordinates 0.4.1 (MIT License,
// Copyright (c) Zachary Blackwood; from Thiago's snippet on discuss.streamlit.io), with one
// change for Lens: "ready" is said again every 250 ms until the first render arrives.
//
// Streamlit's page registers its listener for this iframe in an effect that runs after the
// iframe is mounted. On a busy browser this document can load and say "ready" first; that
// one message is then lost, no render ever comes, and the image stays blank (seen under
// bench/load.py). Saying it again is harmless: a render is idempotent.
function sendMessageToStreamlitClient(type, data) {
  const outData = Object.assign({
      isStreamlitMessage: true,
      type: type,
  }, data);
  window.parent.postMessage(outData, "*");
}

let rendered = false;
window.addEventListener("message", function(event) {
  if (event.data && event.data.type === "streamlit:render") {
    rendered = true;
  }
});

const Streamlit = {
  setComponentReady: function() {
      const say = function() {
          if (!rendered) {
              sendMessageToStreamlitClient("streamlit:componentReady", {apiVersion: 1});
              setTimeout(say, 250);
          }
      };
      say();
  },
  setFrameHeight: function(height) {
      sendMessageToStreamlitClient("streamlit:setFrameHeight", {height: height});
  },
  setComponentValue: function(value) {
      sendMessageToStreamlitClient("streamlit:setComponentValue", {value: value});
  },
  RENDER_EVENT: "streamlit:render",
  events: {
      addEventListener: function(type, callback) {
          window.addEventListener("message", function(event) {
              if (event.data.type === type) {
                  event.detail = event.data
                  callback(event);
              }
          });
      }
  }
}
