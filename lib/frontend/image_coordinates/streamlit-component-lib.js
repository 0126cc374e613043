// The minimal Streamlit component API of streamlit-image-coordinates 0.4.1 (MIT License,
// Copyright (c) Zachary Blackwood; from Thiago's snippet on discuss.streamlit.io), with one
// change for Lens: "ready" is said once the document's body exists.
//
// main.js runs from <head> and says "ready" at its end. On a busy browser the HTML parser
// can yield before it reaches <body>; Streamlit's answer (the render) then finds no
// <img id="image"> (TypeError in onRender), and the image stays blank for good. Seen under
// bench/load.py; tests/e2e/test_components.py streams the body late to reproduce it.
function sendMessageToStreamlitClient(type, data) {
  const outData = Object.assign({
      isStreamlitMessage: true,
      type: type,
  }, data);
  window.parent.postMessage(outData, "*");
}

const Streamlit = {
  setComponentReady: function() {
      const say = function() {
          sendMessageToStreamlitClient("streamlit:componentReady", {apiVersion: 1});
      };
      if (document.readyState === "loading") {
          document.addEventListener("DOMContentLoaded", say, {once: true});
      } else {
          say();
      }
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
